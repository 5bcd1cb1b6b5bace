CREATE TABLE "pull_counts" (
	"repository_id" integer NOT NULL,
	"tag" text NOT NULL,
	"count" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "pull_counts_repository_id_tag_pk" PRIMARY KEY("repository_id","tag")
);
--> statement-breakpoint
ALTER TABLE "pull_counts" ADD CONSTRAINT "pull_counts_repository_id_repositories_id_fk" FOREIGN KEY ("repository_id") REFERENCES "public"."repositories"("id") ON DELETE cascade ON UPDATE no action;