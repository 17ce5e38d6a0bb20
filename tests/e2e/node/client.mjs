// client.mjs - the official `openai` npm client against clawgate.
//
// Run by tests/e2e/test_openai_client.py with OPENAI_BASE_URL pointing at the
// gateway's /v1 and the fake upstream behind it (model fake/m1 echoes, model
// fake/tooly calls the first tool it is offered and answers a tool result with
// "tool result: <content>"). Prints "ok - ..." or "not ok - ..." per case and
// exits 1 if any case failed.
import OpenAI from 'openai';

const client = new OpenAI({
  baseURL: process.env.OPENAI_BASE_URL,
  apiKey: process.env.OPENAI_API_KEY || 'sk-unused',
  maxRetries: 0, // a retry would hide the first answer's problem
  timeout: 20000,
});

let failed = 0;

async function test(name, fn) {
  try {
    await fn();
    console.log(`ok - openai-client: ${name}`);
  } catch (e) {
    failed++;
    const msg = String((e && e.stack) || e).split('\n');
    console.log(`not ok - openai-client: ${name}: ${msg[0]}`);
    for (const line of msg.slice(1, 6)) console.log(`# ${line}`);
  }
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

function eq(got, want, what) {
  const g = JSON.stringify(got);
  const w = JSON.stringify(want);
  if (g !== w) throw new Error(`${what}: got ${g}, want ${w}`);
}

const user = { role: 'user', content: 'hello from the sdk' };
const tools = [
  {
    type: 'function',
    function: {
      name: 'get_time',
      description: 'The current time in a city.',
      parameters: { type: 'object', properties: { city: { type: 'string' } } },
    },
  },
];

await test('models.list finds fake/m1 and the alias', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert(ids.includes('fake/m1'), `fake/m1 in ${JSON.stringify(ids)}`);
  assert(ids.includes('Fast'), `alias Fast in ${JSON.stringify(ids)}`);
});

await test('chat.completions.create (non-stream)', async () => {
  const { data, response } = await client.chat.completions
    .create({ model: 'fake/m1', messages: [user] })
    .withResponse();
  eq(data.object, 'chat.completion', 'object');
  eq(data.choices[0].message.content, 'echo: hello from the sdk', 'content');
  eq(data.choices[0].finish_reason, 'stop', 'finish_reason');
  assert(data.usage && data.usage.total_tokens > 0, `usage ${JSON.stringify(data.usage)}`);
  eq(response.headers.get('x-clawgate-model'), 'fake/m1', 'x-clawgate-model');
  assert(response.headers.get('x-request-id'), 'x-request-id');
});

await test('chat.completions.create by alias', async () => {
  const c = await client.chat.completions.create({ model: 'fast', messages: [user] });
  eq(c.choices[0].message.content, 'echo: hello from the sdk', 'content');
});

await test('chat.completions.create stream: true', async () => {
  const stream = await client.chat.completions.create({
    model: 'fake/m1',
    messages: [user],
    stream: true,
  });
  let text = '';
  let chunks = 0;
  let finish = null;
  for await (const chunk of stream) {
    chunks++;
    assert(chunk.choices.length > 0, `a usage chunk nobody asked for: ${JSON.stringify(chunk)}`);
    text += chunk.choices[0].delta.content || '';
    finish = chunk.choices[0].finish_reason || finish;
  }
  eq(text, 'echo: hello from the sdk', 'streamed text');
  assert(chunks >= 5, `one chunk per token, got ${chunks}`);
  eq(finish, 'stop', 'finish_reason');
});

await test('stream with stream_options.include_usage', async () => {
  const stream = await client.chat.completions.create({
    model: 'fake/m1',
    messages: [user],
    stream: true,
    stream_options: { include_usage: true },
  });
  let usage = null;
  for await (const chunk of stream) if (chunk.usage) usage = chunk.usage;
  assert(usage && usage.completion_tokens > 0, `usage ${JSON.stringify(usage)}`);
});

await test('tool-call round trip (non-stream)', async () => {
  const messages = [{ role: 'user', content: 'what time is it in Oslo?' }];
  const first = await client.chat.completions.create({ model: 'fake/tooly', messages, tools });
  eq(first.choices[0].finish_reason, 'tool_calls', 'finish_reason');
  const call = first.choices[0].message.tool_calls[0];
  eq(call.type, 'function', 'call type');
  eq(call.function.name, 'get_time', 'tool name');
  JSON.parse(call.function.arguments);
  messages.push(first.choices[0].message);
  messages.push({ role: 'tool', tool_call_id: call.id, content: '12:00' });
  const second = await client.chat.completions.create({ model: 'fake/tooly', messages, tools });
  eq(second.choices[0].message.content, 'tool result: 12:00', 'answer after the tool');
});

await test('tool-call round trip (streamed, assembled by the SDK)', async () => {
  const messages = [{ role: 'user', content: 'what time is it in Oslo?' }];
  const runner = client.chat.completions.stream({ model: 'fake/tooly', messages, tools });
  const first = await runner.finalChatCompletion();
  const call = first.choices[0].message.tool_calls[0];
  eq(call.function.name, 'get_time', 'tool name');
  eq(JSON.parse(call.function.arguments), {}, 'arguments reassembled from pieces');
  messages.push(first.choices[0].message);
  messages.push({ role: 'tool', tool_call_id: call.id, content: '13:00' });
  const stream = await client.chat.completions.create({
    model: 'fake/tooly',
    messages,
    tools,
    stream: true,
  });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content || '';
  eq(text, 'tool result: 13:00', 'streamed answer after the tool');
});

await test('unknown model is a NotFoundError', async () => {
  try {
    await client.chat.completions.create({ model: 'no/such-model', messages: [user] });
  } catch (e) {
    assert(e instanceof OpenAI.NotFoundError, `NotFoundError, got ${e && e.constructor.name}`);
    eq(e.status, 404, 'status');
    eq(e.code, 'model_not_found', 'code');
    return;
  }
  throw new Error('no error');
});

await test('responses.create (non-stream)', async () => {
  const r = await client.responses.create({ model: 'fake/m1', input: 'hello responses' });
  eq(r.object, 'response', 'object');
  eq(r.status, 'completed', 'status');
  assert(r.output_text.includes('hello responses'), `output_text: ${r.output_text}`);
  assert(r.usage && r.usage.input_tokens > 0, `usage: ${JSON.stringify(r.usage)}`);
});

await test('responses.create stream: true', async () => {
  const stream = await client.responses.create({
    model: 'fake/m1',
    input: [{ role: 'user', content: [{ type: 'input_text', text: 'streamed responses' }] }],
    stream: true,
  });
  let text = '';
  let last = null;
  let seq = -1;
  for await (const ev of stream) {
    assert(ev.sequence_number > seq, `sequence_number ${ev.sequence_number} after ${seq}`);
    seq = ev.sequence_number;
    if (ev.type === 'response.output_text.delta') text += ev.delta;
    last = ev;
  }
  eq(last && last.type, 'response.completed', 'last event');
  assert(text.includes('streamed responses'), `text: ${text}`);
  eq(last.response.output_text ?? text, text, 'completed output matches the deltas');
});

await test('responses tool-call round trip', async () => {
  const rtools = [{ type: 'function', name: 'get_time', description: 'time',
    parameters: { type: 'object', properties: { city: { type: 'string' } } } }];
  const first = await client.responses.create({ model: 'fake/tooly', input: 'time?', tools: rtools });
  const call = first.output.find((o) => o.type === 'function_call');
  assert(call, `a function_call item in ${JSON.stringify(first.output)}`);
  eq(call.name, 'get_time', 'tool name');
  const second = await client.responses.create({
    model: 'fake/tooly',
    tools: rtools,
    input: [
      { role: 'user', content: 'time?' },
      call,
      { type: 'function_call_output', call_id: call.call_id, output: 'noon' },
    ],
  });
  assert(second.output_text.includes('noon'), `answer uses the tool result: ${second.output_text}`);
});

process.exit(failed ? 1 : 0);
