/*
 * toolcall_text.h — tool calls that a local model wrote as text
 * (`<tool_call>{"name": ..., "arguments": ...}</tool_call>`, as vLLM serves
 * Qwen and Hermes-style models without a tool parser) turned into real calls.
 *
 * DESIGN
 * Built on the tag splitter (proto/think.h) with the tags <tool_call> and
 * </tool_call>, so the same rules hold: split anywhere in a stream, never
 * inside Markdown code. The text between the tags is held (the client must
 * not see half a call as text and then get the call too) and parsed when the
 * closing tag arrives, or at the end of the text when the model stopped
 * without one. A body that is a JSON object with a string `name` becomes a
 * call; anything else goes out as the text it was, tags included. The caller
 * feeds final text only: tool-call text inside reasoning is never executed
 * (it never reaches this parser).
 *
 * A held span is bounded (CG_TCTEXT_MAX): past that it is given up and
 * passed on as text, so a model that opens a tag and never closes it cannot
 * hold the whole answer back.
 */
#ifndef CG_TOOLCALL_TEXT_H
#define CG_TOOLCALL_TEXT_H

#include "proto/think.h"

#define CG_TCTEXT_MAX ((size_t)256 * 1024)

typedef void (*cg_tctext_text_cb)(void *ud, const char *s, size_t n);
/* name is NUL-terminated; args is the arguments as JSON text ("{}" when the
 * model gave none). Both valid during the call only. */
typedef void (*cg_tctext_call_cb)(void *ud, const char *name, size_t name_len, const char *args,
                                  size_t args_len);

typedef struct cg_tctext {
    cg_think_t split;
    cg_buf_t inner;    /* the held body of the open span */
    cg_buf_t open_tag; /* as written, to give back as text */
    bool overflow;     /* the open span passed CG_TCTEXT_MAX: now plain text */
    size_t calls;      /* calls produced so far */
    cg_tctext_text_cb text;
    cg_tctext_call_cb call;
    void *ud;
} cg_tctext_t;

void cg_tctext_init(cg_tctext_t *p, cg_tctext_text_cb text, cg_tctext_call_cb call, void *ud);
void cg_tctext_feed(cg_tctext_t *p, const char *s, size_t n);
/* End of text: an unclosed span is parsed as if closed. */
void cg_tctext_flush(cg_tctext_t *p);
/* Nothing held and no code span open (see cg_think_idle). */
bool cg_tctext_idle(const cg_tctext_t *p);
void cg_tctext_free(cg_tctext_t *p);

/* Parse one call body: 0 with name and args (JSON text) appended to the
 * buffers, or CG_EINVAL. Exposed for tests. */
int cg_tctext_parse(const char *s, size_t n, cg_buf_t *name, cg_buf_t *args);

#endif
