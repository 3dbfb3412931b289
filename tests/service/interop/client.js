'use strict';
// A Node.js gRPC client (@grpc/grpc-js with @grpc/proto-loader) for the interop test
// tests/service/test_interop_node.py. It loads the service's contract from proto/, calls
// Health/Check and EvaluationService/Evaluate on the address given as its only argument, and
// prints one JSON object with what it saw. The google.rpc.Status carried in the
// grpc-status-details-bin trailer is decoded with protobufjs (a dependency of proto-loader).
//
// Usage: node tests/service/interop/client.js 127.0.0.1:PORT

const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

const HERE = __dirname;
const ROOT = path.resolve(HERE, '..', '..', '..');
const CALL_SECONDS = 20;
const TOTAL_SECONDS = 50;

function fail(message) {
  process.stderr.write(`interop client: ${message}\n`);
  process.exit(2);
}

const target = process.argv[2];
if (!target || !/^127\.0\.0\.1:\d{1,5}$/.test(target)) {
  fail('usage: node client.js 127.0.0.1:PORT');
}

// Whatever happens, the client ends: every call has a deadline and the whole run a time limit.
setTimeout(() => fail(`no answer within ${TOTAL_SECONDS} s`), TOTAL_SECONDS * 1000).unref();

// includeDirs: proto/ for "rulebook/v1/...", this directory for the health protocol;
// google/protobuf/struct.proto is bundled with protobufjs.
const definition = protoLoader.loadSync(
  ['rulebook/v1/evaluation_service.proto', 'grpc/health/v1/health.proto'],
  {
    keepCase: true, longs: String, enums: String, defaults: true, oneofs: true,
    includeDirs: [path.join(ROOT, 'proto'), HERE],
  });
const api = grpc.loadPackageDefinition(definition);

function loadStatusTypes() {
  const root = new protobuf.Root();
  root.resolvePath = (origin, file) => (path.isAbsolute(file) ? file : path.join(HERE, file));
  root.loadSync(['google/rpc/status.proto', 'google/rpc/error_details.proto'], { keepCase: true });
  return {
    Status: root.lookupType('google.rpc.Status'),
    BadRequest: root.lookupType('google.rpc.BadRequest'),
  };
}

function call(client, method, request) {
  return new Promise((resolve) => {
    const deadline = new Date(Date.now() + CALL_SECONDS * 1000);
    client[method](request, { deadline }, (err, response) => resolve({ err, response }));
  });
}

// The payload of a google.protobuf.Struct as plain data.
function plainValue(v) {
  switch (v.kind) {
    case 'nullValue': return null;
    case 'numberValue': return v.numberValue;
    case 'stringValue': return v.stringValue;
    case 'boolValue': return v.boolValue;
    case 'structValue': return plainStruct(v.structValue);
    case 'listValue': return (v.listValue.values || []).map(plainValue);
    default: return undefined;
  }
}

function plainStruct(s) {
  const out = {};
  for (const [key, value] of Object.entries((s && s.fields) || {})) out[key] = plainValue(value);
  return out;
}

function decision(d) {
  return {
    decision_id: d.decision_id,
    event_id: d.event_id,
    merchant_id: d.merchant_id,
    rulebook_set: d.rulebook_set,
    rule: d.rule,
    trigger: d.trigger,
    outcome: d.outcome,
    burden: d.burden ? { merchant: d.burden.merchant, platform: d.burden.platform,
      buyer: d.burden.buyer } : null,
    effects: d.effects.map((e) => ({
      effect: e.effect, args: plainStruct(e.args), amounts: plainStruct(e.amounts),
      burden: e.burden.map((b) => ({ party: b.party, category: b.category, amount: b.amount })),
    })),
    explanation: plainStruct(d.explanation),
  };
}

const T0 = '2024-07-01T09:00:00+08:00';
const EVENTS = [
  {
    event_id: 'node-listing', merchant_id: 'node-m1', event_time: T0,
    listing_updated: {
      listing_id: 'node-millet', product_group: 'grain', price: 39.9, unit_cost: 30, quality: 0.9,
    },
  },
  {
    event_id: 'node-order', merchant_id: 'node-m1', event_time: '2024-07-01T10:00:00+08:00',
    order_placed: {
      order_id: 'node-o1', listing_id: 'node-millet', quantity: 2, amount: 79.8, shipping_cost: 4,
    },
  },
];

async function main() {
  const out = { target, versions: { node: process.version } };
  const health = new api.grpc.health.v1.Health(target, grpc.credentials.createInsecure());
  const evaluation = new api.rulebook.v1.EvaluationService(target,
    grpc.credentials.createInsecure());

  const checked = await call(health, 'Check', { service: '' });
  out.health = checked.err ? { error: checked.err.code } : { status: checked.response.status };

  const evaluated = await call(evaluation, 'Evaluate', { events: EVENTS });
  if (evaluated.err) {
    out.evaluate = { error: evaluated.err.code, details: evaluated.err.details };
  } else {
    out.evaluate = {
      results: evaluated.response.results.map((r) => ({
        index: r.index,
        event_id: r.event_id,
        duplicate: r.duplicate,
        errors: r.errors.map((v) => ({ field: v.field, description: v.description })),
        decisions: r.decisions.map(decision),
      })),
    };
  }

  const empty = await call(evaluation, 'Evaluate', { events: [] });
  if (!empty.err) {
    out.empty = { error: null };
  } else {
    const { Status, BadRequest } = loadStatusTypes();
    const raw = empty.err.metadata.get('grpc-status-details-bin');
    const seen = { error: empty.err.code, code_name: grpc.status[empty.err.code],
      details: empty.err.details, trailer_values: raw.length };
    if (raw.length) {
      const status = Status.decode(raw[0]);
      seen.status = { code: status.code, message: status.message, details: [] };
      for (const any of status.details) {
        const detail = { type_url: any.type_url };
        if (any.type_url === 'type.googleapis.com/google.rpc.BadRequest') {
          const bad = BadRequest.decode(any.value);
          detail.field_violations = bad.field_violations.map((v) => ({
            field: v.field, description: v.description }));
        }
        seen.status.details.push(detail);
      }
      const first = seen.status.details.find((d) => d.field_violations);
      if (first && first.field_violations.length) {
        process.stderr.write(`field violation: ${first.field_violations[0].field}\n`);
        seen.violation_field = first.field_violations[0].field;
      }
    }
    out.empty = seen;
  }

  health.close();
  evaluation.close();
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((err) => fail(err && err.stack ? err.stack : String(err)));
