CREATE TABLE "model_signatures" (
	"repository_id" integer NOT NULL,
	"manifest_digest" text NOT NULL,
	"key" text NOT NULL,
	"fingerprint" text NOT NULL,
	"account_id" integer NOT NULL,
	"host" text NOT NULL,
	"signature" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "model_signatures_repository_id_manifest_digest_key_pk" PRIMARY KEY("repository_id","manifest_digest","key")
);
--> statement-breakpoint
ALTER TABLE "model_signatures" ADD CONSTRAINT "model_signatures_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "model_signatures" ADD CONSTRAINT "model_signatures_repository_id_manifest_digest_manifests_repository_id_digest_fk" FOREIGN KEY ("repository_id","manifest_digest") REFERENCES "public"."manifests"("repository_id","digest") ON DELETE cascade ON UPDATE no action;