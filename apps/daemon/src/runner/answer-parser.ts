// What a model's generated text means to the client (docs/daemon.md, "Thinking and tool calls"):
// the reasoning between the template's thinking tags goes to `thinking`, tool calls the template
// announces become `tool_calls`, and the rest is `content`. Pieces arrive as they are generated;
// a part that may still turn out to be a tag or a call is held back until it is known.
// Thinking is split first and tool calls are parsed from the content that remains, as Ollama does.

import type { ChatToolCall } from "../template/index.ts";

export interface ParsedPiece {
  content: string;
  thinking: string;
  toolCalls: ChatToolCall[];
}

/** One stage of the answer: takes text as it is generated, gives back what is known so far. */
export interface PieceParser {
  add(text: string): ParsedPiece;
  /** The generation ended: whatever was held back, as what it turned out to be. */
  end(): ParsedPiece;
}

export const emptyPiece = (): ParsedPiece => ({ content: "", thinking: "", toolCalls: [] });

const merge = (a: ParsedPiece, b: ParsedPiece): ParsedPiece => ({
  content: a.content + b.content,
  thinking: a.thinking + b.thinking,
  toolCalls: [...a.toolCalls, ...b.toolCalls],
});

/**
 * The answer's parser: `thinking` (when the request thinks and the template has thinking tags)
 * splits off the reasoning, then `tools` (when the request has tools) reads calls from the content.
 * Either may be absent; with neither, every piece is content.
 */
export function answerParser(stages: { thinking?: PieceParser; tools?: PieceParser }): PieceParser {
  const { thinking, tools } = stages;
  const afterThinking = (p: ParsedPiece): ParsedPiece => {
    if (!tools) return p;
    const parsed = tools.add(p.content);
    return { ...parsed, thinking: p.thinking + parsed.thinking };
  };
  return {
    add: (text) => afterThinking(thinking ? thinking.add(text) : { ...emptyPiece(), content: text }),
    end: () => {
      const held = afterThinking(thinking ? thinking.end() : emptyPiece());
      return tools ? merge(held, tools.end()) : held;
    },
  };
}
