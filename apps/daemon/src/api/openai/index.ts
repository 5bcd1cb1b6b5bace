// The OpenAI-compatible endpoints (§7.14), as translation on top of the native routes: each
// handler rewrites the request into the native one, calls it in-process, and rewrites the answer
// (JSON, or NDJSON into SSE) back. Nothing here talks to a model directly.

import { Hono } from "hono";
import type { Context } from "hono";
import { StatusError } from "../../errors.ts";
import { chatCompletionFields, completionFields, embedFields, parseBody } from "./body.ts";
import { chatCompletion, chatRequestToNative, chatStreamEvents, includeUsage, newChatId } from "./chat.ts";
import { completion, completionRequestToNative, completionStreamEvents, newCompletionId } from "./completions.ts";
import { embedRequestToNative, embeddingList, encodingFormat } from "./embeddings.ts";
import { errorResponse, fromNativeError } from "./errors.ts";
import { findModel, modelList } from "./models.ts";
import type { NativeChatResponse, NativeEmbedResponse, NativeGenerateResponse, NativeTagsResponse } from "./native.ts";
import { readNDJSON, sseResponse } from "./sse.ts";

/**
 * Calls a native route: POST with `body` as JSON, or GET when `body` is undefined. The signal is
 * the client's, so a client that goes away stops the native work too.
 */
export type NativeCall = (path: string, body?: unknown, signal?: AbortSignal) => Promise<Response>;

/** Calls the app's own routes without a socket (what the daemon mounts). */
export function inProcess(app: Hono): NativeCall {
  return async (path, body, signal) => {
    const init: RequestInit = body === undefined ? { method: "GET" } : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
    if (signal) init.signal = signal;
    return app.request(path, init);
  };
}

function errorFrom(e: unknown): Response {
  if (e instanceof StatusError) return errorResponse(e.status, e.message);
  return errorResponse(500, e instanceof Error ? e.message : String(e));
}

async function nativeJSON<T>(res: Response): Promise<T> {
  const text = await res.text();
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`invalid native response: ${text.slice(0, 200)}`);
  }
}

export function openaiRoutes(native: NativeCall): Hono {
  const app = new Hono();
  const signalOf = (c: Context): AbortSignal => c.req.raw.signal;

  app.post("/v1/chat/completions", async (c) => {
    try {
      const req = parseBody(await c.req.text(), "ChatCompletionRequest", chatCompletionFields);
      const body = chatRequestToNative(req);
      const res = await native("/api/chat", body, signalOf(c));
      if (res.status !== 200) return await fromNativeError(res);
      const id = newChatId();
      if (body.stream) return sseResponse(chatStreamEvents(id, readNDJSON(res.body), includeUsage(req)));
      return c.json(chatCompletion(id, await nativeJSON<NativeChatResponse>(res)));
    } catch (e) {
      return errorFrom(e);
    }
  });

  app.post("/v1/completions", async (c) => {
    try {
      const req = parseBody(await c.req.text(), "CompletionRequest", completionFields);
      const body = completionRequestToNative(req);
      const res = await native("/api/generate", body, signalOf(c));
      if (res.status !== 200) return await fromNativeError(res);
      const id = newCompletionId();
      if (body.stream) return sseResponse(completionStreamEvents(id, readNDJSON(res.body), includeUsage(req)));
      return c.json(completion(id, await nativeJSON<NativeGenerateResponse>(res)));
    } catch (e) {
      return errorFrom(e);
    }
  });

  app.post("/v1/embeddings", async (c) => {
    try {
      const req = parseBody(await c.req.text(), "EmbedRequest", embedFields);
      const body = embedRequestToNative(req);
      const res = await native("/api/embed", body, signalOf(c));
      if (res.status !== 200) return await fromNativeError(res);
      return c.json(embeddingList(body.model, await nativeJSON<NativeEmbedResponse>(res), encodingFormat(req["encoding_format"])));
    } catch (e) {
      return errorFrom(e);
    }
  });

  app.get("/v1/models", async (c) => {
    try {
      const res = await native("/api/tags", undefined, signalOf(c));
      if (res.status !== 200) return await fromNativeError(res);
      return c.json(modelList(await nativeJSON<NativeTagsResponse>(res)));
    } catch (e) {
      return errorFrom(e);
    }
  });

  // `{.+}` so that a namespaced name (alice/story:short) works with or without %2F.
  app.get("/v1/models/:model{.+}", async (c) => {
    try {
      const res = await native("/api/tags", undefined, signalOf(c));
      if (res.status !== 200) return await fromNativeError(res);
      return c.json(findModel(await nativeJSON<NativeTagsResponse>(res), c.req.param("model")));
    } catch (e) {
      return errorFrom(e);
    }
  });

  return app;
}
