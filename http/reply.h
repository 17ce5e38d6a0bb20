/*
 * reply.h — the assistant message of a chat-completions reply, for the
 * session transcript.
 *
 * DESIGN
 * Only requests that name a session need their reply kept, so this runs off
 * the pass-through path: a non-streamed body is parsed once at the end; a
 * stream's chunks are parsed one by one (json-c) and their deltas folded:
 * content and reasoning_content appended, tool calls assembled by index
 * (id, name, arguments concatenated), as clients assemble them.
 */
#ifndef CG_HTTP_REPLY_H
#define CG_HTTP_REPLY_H

#include "common/cg.h"

typedef struct cg_reply cg_reply_t;

cg_reply_t *cg_reply_new(void);
void cg_reply_free(cg_reply_t *r);

/* One chat.completion.chunk (its JSON text). Chunks that do not parse are
 * ignored: the transcript is best effort, the client's stream is not. */
void cg_reply_feed_chunk(cg_reply_t *r, const char *json, size_t len);

/* One Responses API stream event (its name and JSON data): output text
 * deltas and completed function_call items are folded in. */
void cg_reply_feed_event(cg_reply_t *r, const char *event, const char *json, size_t len);

/* The assistant message as JSON ({"role":"assistant","content":...,
 * "reasoning_content":...,"tool_calls":[...]}) appended to out. */
void cg_reply_message(const cg_reply_t *r, cg_buf_t *out);

/* choices[0].message of a non-streamed chat.completion body, appended to
 * out; false (out untouched) when the body has none. */
bool cg_reply_from_body(const char *json, size_t len, cg_buf_t *out);

/* The same from a non-streamed Responses `response` object: its message
 * items' output_text and its function_call items, as a chat-format
 * assistant message. */
bool cg_reply_from_responses_body(const char *json, size_t len, cg_buf_t *out);

/* Chat-format messages (a JSON array: user/assistant/system/tool, assistant
 * tool_calls) as Responses input items (messages, function_call,
 * function_call_output), appended to out as a JSON array. false if the text
 * is not an array. */
bool cg_reply_chat_to_items(const char *json, size_t len, cg_buf_t *out);

#endif
