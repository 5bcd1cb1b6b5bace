// The OpenAI-compatible endpoints (docs/daemon.md, "OpenAI-compatible endpoints"), as translation on top of the native handlers: each
// route rewrites the request into the native one, runs the same handler as the native route, and
// rewrites the answer (one object, or chunks as SSE) back. Nothing here talks to a model directly.

import { Hono } from "hono";
import type { Context } from "hono";
import { StatusError } from "../../errors.ts";
import { chat } from "../handlers/chat.ts";
import { embed } from "../handlers/embed.ts";
import { generate } from "../handlers/generate.ts";
import { firstChunk, type Inference } from "../handlers/generation.ts";
import { tagList } from "../routes/models.ts";
import { chatCompletionFields, completionFields, embedFields, parseBody, responsesFields } from "./body.ts";
import { chatCompletion, chatRequestToNative, chatStreamEvents, includeUsage, newChatId } from "./chat.ts";
import { completion, completionRequestToNative, completionStreamEvents, newCompletionId } from "./completions.ts";
import { embedRequestToNative, embeddingList, encodingFormat } from "./embeddings.ts";
import { errorResponse } from "./errors.ts";
import { findModel, modelList } from "./models.ts";
import { newResponseContext, responseFromAnswer, responseStreamEvents, responsesRequestToNative } from "./responses.ts";
import { sseResponse } from "./sse.ts";
import { readBodyText } from "../respond.ts";

function errorFrom(e: unknown): Response {
  if (e instanceof StatusError) return errorResponse(e.status, e.message);
  return errorResponse(500, e instanceof Error ? e.message : String(e));
}

export function openaiRoutes(deps: Inference): Hono {
  const app = new Hono();
  const signalOf = (c: Context): AbortSignal => c.req.raw.signal;

  app.post("/v1/chat/completions", async (c) => {
    try {
      const req = parseBody(await readBodyText(c), "ChatCompletionRequest", chatCompletionFields);
      const body = chatRequestToNative(req);
      const gen = await chat(deps, body);
      if (body.stream) {
        const chunks = await firstChunk(gen, signalOf(c));
        return sseResponse(chatStreamEvents(newChatId(), chunks, includeUsage(req)));
      }
      const answer = await gen.answer(signalOf(c));
      return c.json(chatCompletion(newChatId(), answer));
    } catch (e) {
      return errorFrom(e);
    }
  });

  app.post("/v1/completions", async (c) => {
    try {
      const req = parseBody(await readBodyText(c), "CompletionRequest", completionFields);
      const body = completionRequestToNative(req);
      const gen = await generate(deps, body);
      if (body.stream) {
        const chunks = await firstChunk(gen, signalOf(c));
        return sseResponse(completionStreamEvents(newCompletionId(), chunks, includeUsage(req)));
      }
      const answer = await gen.answer(signalOf(c));
      return c.json(completion(newCompletionId(), answer));
    } catch (e) {
      return errorFrom(e);
    }
  });

  app.post("/v1/responses", async (c) => {
    try {
      const req = parseBody(await readBodyText(c), "ResponsesRequest", responsesFields);
      const body = responsesRequestToNative(req);
      const ctx = newResponseContext(req);
      const gen = await chat(deps, body);
      if (body.stream) {
        const chunks = await firstChunk(gen, signalOf(c));
        return sseResponse(responseStreamEvents(ctx, chunks));
      }
      const answer = await gen.answer(signalOf(c));
      return c.json(responseFromAnswer(ctx, answer));
    } catch (e) {
      return errorFrom(e);
    }
  });

  app.post("/v1/embeddings", async (c) => {
    try {
      const req = parseBody(await readBodyText(c), "EmbedRequest", embedFields);
      const body = embedRequestToNative(req);
      const answer = await embed(deps, body, signalOf(c));
      return c.json(embeddingList(body.model, answer, encodingFormat(req["encoding_format"])));
    } catch (e) {
      return errorFrom(e);
    }
  });

  app.get("/v1/models", async (c) => {
    try {
      return c.json(modelList(await tagList(deps.store)));
    } catch (e) {
      return errorFrom(e);
    }
  });

  // `{.+}` so that a namespaced name (alice/story:short) works with or without %2F.
  app.get("/v1/models/:model{.+}", async (c) => {
    try {
      return c.json(findModel(await tagList(deps.store), c.req.param("model")));
    } catch (e) {
      return errorFrom(e);
    }
  });

  return app;
}
