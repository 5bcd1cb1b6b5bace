CREATE TABLE "mirror_manifests" (
	"repository_id" integer NOT NULL,
	"digest" text NOT NULL,
	"media_type" text NOT NULL,
	"content" "bytea" NOT NULL,
	"blobs" jsonb NOT NULL,
	"upstream" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "mirror_manifests_repository_id_digest_pk" PRIMARY KEY("repository_id","digest")
);
--> statement-breakpoint
CREATE TABLE "mirror_tags" (
	"repository_id" integer NOT NULL,
	"name" text NOT NULL,
	"manifest_digest" text NOT NULL,
	"upstream" text NOT NULL,
	"refreshed_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "mirror_tags_repository_id_name_pk" PRIMARY KEY("repository_id","name")
);
--> statement-breakpoint
ALTER TABLE "mirror_manifests" ADD CONSTRAINT "mirror_manifests_repository_id_repositories_id_fk" FOREIGN KEY ("repository_id") REFERENCES "public"."repositories"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "mirror_tags" ADD CONSTRAINT "mirror_tags_repository_id_manifest_digest_mirror_manifests_repository_id_digest_fk" FOREIGN KEY ("repository_id","manifest_digest") REFERENCES "public"."mirror_manifests"("repository_id","digest") ON DELETE cascade ON UPDATE no action;