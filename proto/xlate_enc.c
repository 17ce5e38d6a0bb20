/*
 * xlate_enc.c — client-side encoders: canonical events to chat completion
 * chunks or Responses events, and the non-stream objects.
 *
 * DESIGN
 * JSON is written by hand into one scratch buffer per event (cg_json_quote
 * escapes strings): an event is a handful of fixed keys around one delta,
 * and building a tree for it would cost more than the rest of the path.
 *
 * Chat chunks follow OpenAI: the first delta carries the role, text goes in
 * `content`, reasoning in `reasoning_content`, tool calls as `tool_calls`
 * pieces with their index (the first names the call, later ones add
 * arguments), then a chunk with an empty delta and the finish reason, then
 * (if the client asked) one usage chunk with no choices.
 *
 * Responses events follow the Responses API, strictly enough for the
 * official SDK's accumulator: response.created and response.in_progress
 * first (sent lazily, with the first real event, so an attempt that fails
 * before any output emits nothing and may fail over); each output item is
 * added before its deltas and done before response.completed; text and
 * reasoning items are closed when another item starts, function call items
 * at the end (a chat upstream may stream two calls' arguments interleaved);
 * every event has the next sequence_number, from 0. Reasoning goes out as
 * a reasoning item with one summary_text part.
 *
 * Items are accumulated (text, arguments) for the Responses stream (its
 * closing events repeat the full text) and for non-stream replies.
 */
#include "proto/jscan.h"
#include "proto/xlate_int.h"

static void quote(cg_buf_t *b, const char *s)
{
    cg_json_quote(b, s, strlen(s));
}

static void send_event(xs_t *xs, const char *event, const cg_buf_t *b)
{
    if (xs->nonstream)
        return;
    xs->started = true;
    xs->emit(xs->ud, event, b->data, b->len);
}

static const char *chat_id(const xs_t *xs)
{
    return xs->up_id ? xs->up_id : xs->resp_id;
}

static const char *chat_model(const xs_t *xs)
{
    return xs->up_model ? xs->up_model : xs->model_ref;
}

static int64_t chat_created(const xs_t *xs)
{
    return xs->up_created ? xs->up_created : xs->created;
}

/* ------------------------------------------------------------------------ */
/* accumulated items                                                        */

static int item_new(xs_t *xs, xitem_kind_t kind)
{
    if (xs->n_items == xs->cap_items) {
        xs->cap_items = xs->cap_items ? 2 * xs->cap_items : 4;
        xs->items = cg_realloc(xs->items, xs->cap_items * sizeof *xs->items);
    }
    int i = (int)xs->n_items++;
    xitem_t *it = &xs->items[i];
    memset(it, 0, sizeof *it);
    it->kind = kind;
    it->tool = -1;
    static const char *const prefix[] = {"msg", "rs", "fc"};
    snprintf(it->id, sizeof it->id, "%s_%.80s_%d", prefix[kind], xs->resp_id, i);
    return i;
}

/* ------------------------------------------------------------------------ */
/* chat chunks                                                              */

static cg_buf_t *chunk_begin(xs_t *xs)
{
    cg_buf_t *b = &xs->tmp;
    cg_buf_reset(b);
    cg_buf_puts(b, "{\"id\":");
    quote(b, chat_id(xs));
    cg_buf_printf(b, ",\"object\":\"chat.completion.chunk\",\"created\":%lld,\"model\":",
                  (long long)chat_created(xs));
    quote(b, chat_model(xs));
    cg_buf_puts(b, ",\"choices\":[{\"index\":0,\"delta\":{");
    if (!xs->role_sent) {
        cg_buf_puts(b, "\"role\":\"assistant\"");
        xs->role_sent = true;
        return b;
    }
    return b;
}

/* A member of the delta: a comma unless it is the first. */
static void delta_sep(cg_buf_t *b)
{
    if (b->data[b->len - 1] != '{')
        cg_buf_puts(b, ",");
}

static void chunk_end(xs_t *xs, cg_buf_t *b, const char *finish)
{
    cg_buf_puts(b, "},\"logprobs\":null,\"finish_reason\":");
    if (finish)
        quote(b, finish);
    else
        cg_buf_puts(b, "null");
    cg_buf_puts(b, "}]}");
    send_event(xs, NULL, b);
}

static void chat_usage_json(const xs_t *xs, cg_buf_t *b)
{
    const cg_xlate_usage_t *u = &xs->usage;
    cg_buf_printf(b,
                  "{\"prompt_tokens\":%lld,\"completion_tokens\":%lld,\"total_tokens\":%lld,"
                  "\"prompt_tokens_details\":{\"cached_tokens\":%lld},"
                  "\"completion_tokens_details\":{\"reasoning_tokens\":%lld}}",
                  (long long)u->input, (long long)u->output, (long long)(u->input + u->output),
                  (long long)u->cache_read, (long long)u->reasoning);
}

/* ------------------------------------------------------------------------ */
/* Responses events                                                         */

static cg_buf_t *rev_begin(xs_t *xs, const char *type)
{
    cg_buf_t *b = &xs->tmp;
    cg_buf_reset(b);
    cg_buf_printf(b, "{\"type\":\"%s\",\"sequence_number\":%lld", type, (long long)xs->seq++);
    return b;
}

static void rev_end(xs_t *xs, const char *type, cg_buf_t *b)
{
    cg_buf_puts(b, "}");
    send_event(xs, type, b);
}

static void item_json(const xs_t *xs, cg_buf_t *b, const xitem_t *it, bool done)
{
    cg_buf_puts(b, "{\"id\":");
    quote(b, it->id);
    switch (it->kind) {
    case IT_MSG:
        cg_buf_printf(b,
                      ",\"type\":\"message\",\"status\":\"%s\",\"role\":\"assistant\","
                      "\"content\":[",
                      done ? "completed" : "in_progress");
        if (done) {
            cg_buf_puts(b, "{\"type\":\"output_text\",\"text\":");
            cg_json_quote(b, it->text.data ? it->text.data : "", it->text.len);
            cg_buf_puts(b, ",\"annotations\":[],\"logprobs\":[]}");
        }
        cg_buf_puts(b, "]}");
        break;
    case IT_REASONING:
        cg_buf_puts(b, ",\"type\":\"reasoning\",\"summary\":[");
        if (done) {
            cg_buf_puts(b, "{\"type\":\"summary_text\",\"text\":");
            cg_json_quote(b, it->text.data ? it->text.data : "", it->text.len);
            cg_buf_puts(b, "}");
        }
        cg_buf_puts(b, "]}");
        break;
    case IT_CALL: {
        const xtool_t *t = &xs->tools[it->tool];
        cg_buf_printf(b, ",\"type\":\"function_call\",\"status\":\"%s\",\"call_id\":",
                      done ? "completed" : "in_progress");
        quote(b, t->id);
        cg_buf_puts(b, ",\"name\":");
        quote(b, t->name);
        cg_buf_puts(b, ",\"arguments\":");
        if (done)
            cg_json_quote(b, it->text.data ? it->text.data : "", it->text.len);
        else
            cg_buf_puts(b, "\"\"");
        cg_buf_puts(b, "}");
        break;
    }
    }
}

static void resp_usage_json(const xs_t *xs, cg_buf_t *b)
{
    const cg_xlate_usage_t *u = &xs->usage;
    if (!u->have) {
        cg_buf_puts(b, "null");
        return;
    }
    cg_buf_printf(b,
                  "{\"input_tokens\":%lld,\"input_tokens_details\":{\"cached_tokens\":%lld},"
                  "\"output_tokens\":%lld,\"output_tokens_details\":{\"reasoning_tokens\":%lld},"
                  "\"total_tokens\":%lld}",
                  (long long)u->input, (long long)u->cache_read, (long long)u->output,
                  (long long)u->reasoning, (long long)(u->input + u->output));
}

/* The response object. status: in_progress, completed, incomplete, failed.
 * Output items only for the closing events (completed items as done). */
static void response_json(const xs_t *xs, cg_buf_t *b, const char *status, bool with_output,
                          const char *err_code, const char *err_msg)
{
    cg_buf_puts(b, "{\"id\":");
    quote(b, xs->resp_id);
    cg_buf_printf(b, ",\"object\":\"response\",\"created_at\":%lld,\"status\":\"%s\",\"error\":",
                  (long long)xs->created, status);
    if (err_code) {
        cg_buf_puts(b, "{\"code\":");
        quote(b, err_code);
        cg_buf_puts(b, ",\"message\":");
        quote(b, err_msg);
        cg_buf_puts(b, "}");
    } else {
        cg_buf_puts(b, "null");
    }
    cg_buf_puts(b, ",\"incomplete_details\":");
    if (strcmp(status, "incomplete") == 0)
        cg_buf_printf(b, "{\"reason\":\"%s\"}",
                      xs->finish_reason && strcmp(xs->finish_reason, "content_filter") == 0
                          ? "content_filter"
                          : "max_output_tokens");
    else
        cg_buf_puts(b, "null");
    cg_buf_puts(b, ",\"instructions\":null,\"max_output_tokens\":null,\"model\":");
    quote(b, xs->model_ref);
    cg_buf_puts(b, ",\"output\":[");
    if (with_output) {
        for (size_t i = 0; i < xs->n_items; i++) {
            if (i)
                cg_buf_puts(b, ",");
            item_json(xs, b, &xs->items[i], !xs->items[i].open);
        }
    }
    cg_buf_puts(b, "],\"parallel_tool_calls\":true,\"previous_response_id\":null,"
                   "\"reasoning\":{\"effort\":null,\"summary\":null},\"store\":false,"
                   "\"temperature\":null,\"text\":{\"format\":{\"type\":\"text\"}},"
                   "\"tool_choice\":\"auto\",\"tools\":[],\"top_p\":null,"
                   "\"truncation\":\"disabled\",\"usage\":");
    if (with_output)
        resp_usage_json(xs, b);
    else
        cg_buf_puts(b, "null");
    cg_buf_puts(b, ",\"metadata\":{}}");
}

static void ensure_created(xs_t *xs)
{
    if (xs->created_sent)
        return;
    xs->created_sent = true;
    cg_buf_t *b = rev_begin(xs, "response.created");
    cg_buf_puts(b, ",\"response\":");
    response_json(xs, b, "in_progress", false, NULL, NULL);
    rev_end(xs, "response.created", b);
    b = rev_begin(xs, "response.in_progress");
    cg_buf_puts(b, ",\"response\":");
    response_json(xs, b, "in_progress", false, NULL, NULL);
    rev_end(xs, "response.in_progress", b);
}

/* item_id and output_index, the routing fields of item-scoped events. */
static void routing(cg_buf_t *b, const xitem_t *it, int index)
{
    cg_buf_puts(b, ",\"item_id\":");
    quote(b, it->id);
    cg_buf_printf(b, ",\"output_index\":%d", index);
}

static void r_item_added(xs_t *xs, int i)
{
    xitem_t *it = &xs->items[i];
    it->open = true;
    ensure_created(xs);
    cg_buf_t *b = rev_begin(xs, "response.output_item.added");
    cg_buf_printf(b, ",\"output_index\":%d,\"item\":", i);
    item_json(xs, b, it, false);
    rev_end(xs, "response.output_item.added", b);
    if (it->kind == IT_MSG) {
        b = rev_begin(xs, "response.content_part.added");
        routing(b, it, i);
        cg_buf_puts(b, ",\"content_index\":0,\"part\":{\"type\":\"output_text\",\"text\":\"\","
                       "\"annotations\":[],\"logprobs\":[]}");
        rev_end(xs, "response.content_part.added", b);
    } else if (it->kind == IT_REASONING) {
        b = rev_begin(xs, "response.reasoning_summary_part.added");
        routing(b, it, i);
        cg_buf_puts(b, ",\"summary_index\":0,\"part\":{\"type\":\"summary_text\",\"text\":\"\"}");
        rev_end(xs, "response.reasoning_summary_part.added", b);
    }
}

static void r_item_delta(xs_t *xs, int i, const char *s, size_t n)
{
    xitem_t *it = &xs->items[i];
    const char *type = it->kind == IT_MSG         ? "response.output_text.delta"
                       : it->kind == IT_REASONING ? "response.reasoning_summary_text.delta"
                                                  : "response.function_call_arguments.delta";
    cg_buf_t *b = rev_begin(xs, type);
    routing(b, it, i);
    if (it->kind == IT_MSG)
        cg_buf_puts(b, ",\"content_index\":0");
    else if (it->kind == IT_REASONING)
        cg_buf_puts(b, ",\"summary_index\":0");
    cg_buf_puts(b, ",\"delta\":");
    cg_json_quote(b, s, n);
    if (it->kind == IT_MSG)
        cg_buf_puts(b, ",\"logprobs\":[]");
    rev_end(xs, type, b);
}

static void r_item_done(xs_t *xs, int i)
{
    xitem_t *it = &xs->items[i];
    if (!it->open)
        return;
    const char *text = it->text.data ? it->text.data : "";
    cg_buf_t *b;
    if (it->kind == IT_MSG) {
        b = rev_begin(xs, "response.output_text.done");
        routing(b, it, i);
        cg_buf_puts(b, ",\"content_index\":0,\"text\":");
        cg_json_quote(b, text, it->text.len);
        cg_buf_puts(b, ",\"logprobs\":[]");
        rev_end(xs, "response.output_text.done", b);
        b = rev_begin(xs, "response.content_part.done");
        routing(b, it, i);
        cg_buf_puts(b, ",\"content_index\":0,\"part\":{\"type\":\"output_text\",\"text\":");
        cg_json_quote(b, text, it->text.len);
        cg_buf_puts(b, ",\"annotations\":[],\"logprobs\":[]}");
        rev_end(xs, "response.content_part.done", b);
    } else if (it->kind == IT_REASONING) {
        b = rev_begin(xs, "response.reasoning_summary_text.done");
        routing(b, it, i);
        cg_buf_puts(b, ",\"summary_index\":0,\"text\":");
        cg_json_quote(b, text, it->text.len);
        rev_end(xs, "response.reasoning_summary_text.done", b);
        b = rev_begin(xs, "response.reasoning_summary_part.done");
        routing(b, it, i);
        cg_buf_puts(b, ",\"summary_index\":0,\"part\":{\"type\":\"summary_text\",\"text\":");
        cg_json_quote(b, text, it->text.len);
        cg_buf_puts(b, "}");
        rev_end(xs, "response.reasoning_summary_part.done", b);
    } else {
        b = rev_begin(xs, "response.function_call_arguments.done");
        routing(b, it, i);
        cg_buf_puts(b, ",\"name\":");
        quote(b, xs->tools[it->tool].name);
        cg_buf_puts(b, ",\"arguments\":");
        cg_json_quote(b, text, it->text.len);
        rev_end(xs, "response.function_call_arguments.done", b);
    }
    it->open = false;
    b = rev_begin(xs, "response.output_item.done");
    cg_buf_printf(b, ",\"output_index\":%d,\"item\":", i);
    item_json(xs, b, it, true);
    rev_end(xs, "response.output_item.done", b);
}

static bool resp_stream(const xs_t *xs)
{
    return xs->client == CG_XAPI_RESPONSES && !xs->nonstream;
}

/* Text or reasoning into the current item of that kind, opening one (and
 * closing the current one) when the kind changes. */
static void acc_text(xs_t *xs, xitem_kind_t kind, const char *s, size_t n)
{
    if (xs->cur < 0 || xs->items[xs->cur].kind != kind) {
        if (xs->cur >= 0 && resp_stream(xs))
            r_item_done(xs, xs->cur);
        xs->cur = item_new(xs, kind);
        if (resp_stream(xs))
            r_item_added(xs, xs->cur);
    }
    cg_buf_append(&xs->items[xs->cur].text, s, n);
    if (resp_stream(xs))
        r_item_delta(xs, xs->cur, s, n);
}

/* ------------------------------------------------------------------------ */
/* the encoder interface                                                    */

void cg_xl_enc_text(xs_t *xs, const char *s, size_t n)
{
    if (xs->accumulate) {
        acc_text(xs, IT_MSG, s, n);
        return;
    }
    cg_buf_t *b = chunk_begin(xs);
    delta_sep(b);
    cg_buf_puts(b, "\"content\":");
    cg_json_quote(b, s, n);
    chunk_end(xs, b, NULL);
}

void cg_xl_enc_reasoning(xs_t *xs, const char *s, size_t n)
{
    if (xs->accumulate) {
        acc_text(xs, IT_REASONING, s, n);
        return;
    }
    cg_buf_t *b = chunk_begin(xs);
    delta_sep(b);
    cg_buf_puts(b, "\"reasoning_content\":");
    cg_json_quote(b, s, n);
    chunk_end(xs, b, NULL);
}

void cg_xl_enc_tool_start(xs_t *xs, int tool)
{
    xtool_t *t = &xs->tools[tool];
    if (xs->accumulate) {
        if (xs->cur >= 0 && resp_stream(xs))
            r_item_done(xs, xs->cur);
        xs->cur = -1;
        int i = item_new(xs, IT_CALL);
        xs->items[i].tool = tool;
        t->item = i;
        if (resp_stream(xs))
            r_item_added(xs, i);
        return;
    }
    cg_buf_t *b = chunk_begin(xs);
    delta_sep(b);
    cg_buf_printf(b, "\"tool_calls\":[{\"index\":%d,\"id\":", tool);
    quote(b, t->id);
    cg_buf_puts(b, ",\"type\":\"function\",\"function\":{\"name\":");
    quote(b, t->name);
    cg_buf_puts(b, ",\"arguments\":\"\"}}]");
    chunk_end(xs, b, NULL);
}

void cg_xl_enc_tool_args(xs_t *xs, int tool, const char *s, size_t n)
{
    if (xs->accumulate) {
        int i = xs->tools[tool].item;
        cg_assert(i >= 0);
        cg_buf_append(&xs->items[i].text, s, n);
        if (resp_stream(xs) && xs->items[i].open)
            r_item_delta(xs, i, s, n);
        return;
    }
    cg_buf_t *b = chunk_begin(xs);
    delta_sep(b);
    cg_buf_printf(b, "\"tool_calls\":[{\"index\":%d,\"function\":{\"arguments\":", tool);
    cg_json_quote(b, s, n);
    cg_buf_puts(b, "}}]");
    chunk_end(xs, b, NULL);
}

void cg_xl_enc_usage_chunk(xs_t *xs)
{
    if (xs->client != CG_XAPI_CHAT || xs->nonstream || !xs->o.client_usage || xs->usage_sent ||
        !xs->usage.have)
        return;
    xs->usage_sent = true;
    cg_buf_t *b = &xs->tmp;
    cg_buf_reset(b);
    cg_buf_puts(b, "{\"id\":");
    quote(b, chat_id(xs));
    cg_buf_printf(b, ",\"object\":\"chat.completion.chunk\",\"created\":%lld,\"model\":",
                  (long long)chat_created(xs));
    quote(b, chat_model(xs));
    cg_buf_puts(b, ",\"choices\":[],\"usage\":");
    chat_usage_json(xs, b);
    cg_buf_puts(b, "}");
    send_event(xs, NULL, b);
}

void cg_xl_enc_finish_event(xs_t *xs)
{
    if (xs->client != CG_XAPI_CHAT || xs->nonstream || xs->finish_sent)
        return;
    xs->finish_sent = true;
    cg_buf_t *b = chunk_begin(xs);
    chunk_end(xs, b, xs->finish_reason ? xs->finish_reason : "stop");
}

void cg_xl_enc_close(xs_t *xs)
{
    if (!xs->finish_reason)
        xs->finish_reason = xs->n_tools ? "tool_calls" : "stop";
    if (xs->client == CG_XAPI_CHAT) {
        cg_xl_enc_finish_event(xs);
        cg_xl_enc_usage_chunk(xs);
        return;
    }
    ensure_created(xs);
    if (xs->cur >= 0)
        r_item_done(xs, xs->cur);
    xs->cur = -1;
    for (size_t i = 0; i < xs->n_items; i++)
        r_item_done(xs, (int)i);
    bool incomplete = strcmp(xs->finish_reason, "length") == 0 ||
                      strcmp(xs->finish_reason, "content_filter") == 0;
    const char *type = incomplete ? "response.incomplete" : "response.completed";
    cg_buf_t *b = rev_begin(xs, type);
    cg_buf_puts(b, ",\"response\":");
    response_json(xs, b, incomplete ? "incomplete" : "completed", true, NULL, NULL);
    rev_end(xs, type, b);
}

void cg_xl_enc_fail(xs_t *xs, const char *klass, const char *message)
{
    if (xs->client == CG_XAPI_CHAT) {
        cg_buf_t *b = &xs->tmp;
        cg_buf_reset(b);
        cg_buf_puts(b, "{\"error\":{\"message\":");
        quote(b, message);
        cg_buf_puts(b, ",\"type\":\"upstream_error\",\"code\":");
        quote(b, klass);
        cg_buf_puts(b, "}}");
        send_event(xs, NULL, b);
        return;
    }
    ensure_created(xs);
    cg_buf_t *b = rev_begin(xs, "response.failed");
    cg_buf_puts(b, ",\"response\":");
    response_json(xs, b, "failed", true, klass, message);
    rev_end(xs, "response.failed", b);
}

/* ------------------------------------------------------------------------ */
/* non-stream objects                                                       */

static void chat_body(xs_t *xs, cg_buf_t *out)
{
    cg_buf_t text = {0}, reasoning = {0};
    size_t calls = 0;
    for (size_t i = 0; i < xs->n_items; i++) {
        xitem_t *it = &xs->items[i];
        if (it->kind == IT_MSG)
            cg_buf_append(&text, it->text.data, it->text.len);
        else if (it->kind == IT_REASONING)
            cg_buf_append(&reasoning, it->text.data, it->text.len);
        else
            calls++;
    }
    cg_buf_puts(out, "{\"id\":");
    quote(out, chat_id(xs));
    cg_buf_printf(out, ",\"object\":\"chat.completion\",\"created\":%lld,\"model\":",
                  (long long)chat_created(xs));
    quote(out, chat_model(xs));
    cg_buf_puts(out, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
    if (text.len || !calls)
        cg_json_quote(out, text.data ? text.data : "", text.len);
    else
        cg_buf_puts(out, "null");
    if (reasoning.len) {
        cg_buf_puts(out, ",\"reasoning_content\":");
        cg_json_quote(out, reasoning.data, reasoning.len);
    }
    if (calls) {
        cg_buf_puts(out, ",\"tool_calls\":[");
        size_t k = 0;
        for (size_t i = 0; i < xs->n_items; i++) {
            xitem_t *it = &xs->items[i];
            if (it->kind != IT_CALL)
                continue;
            xtool_t *t = &xs->tools[it->tool];
            cg_buf_puts(out, k++ ? ",{\"id\":" : "{\"id\":");
            quote(out, t->id);
            cg_buf_puts(out, ",\"type\":\"function\",\"function\":{\"name\":");
            quote(out, t->name);
            cg_buf_puts(out, ",\"arguments\":");
            cg_json_quote(out, it->text.data ? it->text.data : "", it->text.len);
            cg_buf_puts(out, "}}");
        }
        cg_buf_puts(out, "]");
    }
    cg_buf_puts(out, ",\"refusal\":null},\"logprobs\":null,\"finish_reason\":");
    quote(out, xs->finish_reason ? xs->finish_reason : "stop");
    cg_buf_puts(out, "}]");
    if (xs->usage.have) {
        cg_buf_puts(out, ",\"usage\":");
        chat_usage_json(xs, out);
    }
    cg_buf_puts(out, "}");
    cg_buf_free(&text);
    cg_buf_free(&reasoning);
}

void cg_xl_enc_build_body(xs_t *xs, cg_buf_t *out)
{
    if (xs->client == CG_XAPI_CHAT) {
        chat_body(xs, out);
        return;
    }
    for (size_t i = 0; i < xs->n_items; i++)
        xs->items[i].open = false;
    bool incomplete = strcmp(xs->finish_reason, "length") == 0 ||
                      strcmp(xs->finish_reason, "content_filter") == 0;
    response_json(xs, out, incomplete ? "incomplete" : "completed", true, NULL, NULL);
}
