'use strict';
// The Custom CRM REST API, served by json-server 0.17.4 used as a module: json-server's router
// stores the records in a JSON file (lowdb) and serves them; the middlewares here put the Custom
// CRM's contract around it (README.md, "The Custom CRM REST contract"): bearer auth, validation
// against the entity schemas of schemas/custom-crm, server-assigned ids, updated_at stamps,
// incremental listing with an opaque cursor, idempotent creates and JSON errors.
//
//   node server.js [--port N] [--db FILE]
//
// --port (or PORT; default 3000; 0 picks a free port) and --db (or CRM_DB_FILE; default
// db.json in the working directory, created when missing). It listens on 127.0.0.1 only and
// prints one line when it is ready: `Custom CRM listening on http://127.0.0.1:<port>`.
// CRM_TOKEN, when set, is the bearer token every request must carry. CRM_LOG=1 logs requests.
// CRM_EXIT_ON_EOF=1 stops the server when its standard input ends.

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const jsonServer = require('json-server');

// ---------------------------------------------------------------------------------------------
// Settings

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const m = /^--(port|db)(?:=(.*))?$/.exec(argv[i]);
    if (!m) {
      fail(`unknown argument ${JSON.stringify(argv[i])}; usage: node server.js [--port N] [--db FILE]`);
    }
    let v = m[2];
    if (v === undefined) {
      if (i + 1 >= argv.length) fail(`--${m[1]} needs a value`);
      v = argv[++i];
    }
    out[m[1]] = v;
  }
  return out;
}

function fail(msg) {
  process.stderr.write(`custom-crm: ${msg}\n`);
  process.exit(2);
}

const args = parseArgs(process.argv.slice(2));
const portText = args.port ?? process.env.PORT ?? '3000';
if (!/^\d+$/.test(portText) || Number(portText) > 65535) fail(`invalid port ${JSON.stringify(portText)}`);
const PORT = Number(portText);
const DB_FILE = path.resolve(args.db ?? process.env.CRM_DB_FILE ?? 'db.json');
const TOKEN = process.env.CRM_TOKEN || '';
const SCHEMAS = path.resolve(__dirname, '../../schemas/custom-crm');

// ---------------------------------------------------------------------------------------------
// Resources: what the schemas of schemas/custom-crm do not say about each entity.

const RESOURCES = {
  products: {
    entity: 'product',
    schema: 'product.json',
    required: ['sku', 'name', 'unit_price'],
    defaults: { description: null, units_in_stock: 0, unlimited_stock: false, discontinued: false, visible: true, weight_kg: null, category: null, webshop_variant_id: null, webshop_availability: null },
    unique: [{ field: 'sku' }],
    min0: ['unit_price', 'units_in_stock', 'weight_kg'],
  },
  customers: {
    entity: 'customer',
    schema: 'customer.json',
    required: ['first_name', 'last_name', 'email', 'address1', 'city', 'country_code'],
    defaults: { phone: null, company: null, address2: null, state: null, postal_code: null, accepts_marketing: false },
    unique: [{ field: 'email', fold: true }],
    patterns: { email: [/^[^@\s]+@[^@\s]+$/, 'an e-mail address'], country_code: [/^[A-Z]{2}$/, 'an ISO 3166-1 alpha-2 code such as "NO"'] },
    created: true,
  },
  orders: {
    entity: 'order',
    schema: 'order.json',
    required: ['order_number', 'customer_id', 'order_date', 'subtotal', 'grand_total'],
    defaults: {
      customer_email: null, billing_first_name: null, billing_last_name: null, billing_address1: null, billing_address2: null,
      billing_city: null, billing_state: null, billing_postal_code: null, billing_country_code: null, billing_phone: null,
      status: 'pending', currency: 'EUR', shipping_total: 0, tax_total: 0, lines: [],
    },
    unique: [{ field: 'order_number' }],
    patterns: { currency: [/^[A-Z]{3}$/, 'an ISO 4217 code such as "EUR"'], billing_country_code: [/^[A-Z]{2}$/, 'an ISO 3166-1 alpha-2 code such as "NO"'] },
    min0: ['subtotal', 'shipping_total', 'tax_total', 'grand_total'],
    refs: { customer_id: 'customers' },
    lines: { required: ['product_id', 'quantity', 'unit_price'], refs: { product_id: 'products' } },
  },
};

// Server-owned properties: ignored in request bodies.
const SERVER_OWNED = new Set(['id', 'created_at', 'updated_at']);
const LINE_SERVER_OWNED = new Set(['order_id']);

for (const [name, r] of Object.entries(RESOURCES)) {
  const file = path.join(SCHEMAS, r.schema);
  let s;
  try {
    s = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    fail(`cannot read the schema of ${name}: ${e.message}`);
  }
  r.props = s.properties;
  if (r.lines) r.lines.props = s.properties.lines.items.properties;
}

// ---------------------------------------------------------------------------------------------
// Errors

class APIError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const invalid = (msg) => new APIError(400, 'validation_failed', msg);

function sendError(res, status, code, message) {
  res.status(status).json({ error: { code, message } });
}

// ---------------------------------------------------------------------------------------------
// Values

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;

function typeOf(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function fits(v, types) {
  const t = typeOf(v);
  return types.includes(t) || (t === 'integer' && types.includes('number'));
}

function describe(v) {
  const s = JSON.stringify(v);
  return s.length > 60 ? s.slice(0, 57) + '...' : s;
}

// checkProps checks the properties of body against the schema's props: known, typed, enums,
// date-times, patterns, non-negative numbers, non-blank required strings. where prefixes the
// property names in messages (`lines[2].`).
function checkProps(body, props, rules, where) {
  for (const [k, v] of Object.entries(body)) {
    const p = props[k];
    if (!p) throw invalid(`${where}${k}: unknown property`);
    const types = [].concat(p.type);
    if (v === null && rules.required.includes(k)) throw invalid(`${where}${k} is required`);
    if (!fits(v, types)) {
      throw invalid(`${where}${k} must be ${types.filter((t) => t !== 'null').join(' or ')}${types.includes('null') ? ' or null' : ''}, got ${describe(v)}`);
    }
    if (v === null) continue;
    if (typeof v === 'string' && rules.required.includes(k) && v.trim() === '') throw invalid(`${where}${k} must not be blank`);
    if (p.enum && !p.enum.includes(v)) throw invalid(`${where}${k} must be one of ${p.enum.map((e) => JSON.stringify(e)).join(', ')}, got ${describe(v)}`);
    if (p.format === 'date-time' && (!RFC3339.test(v) || Number.isNaN(Date.parse(v)))) {
      throw invalid(`${where}${k} must be an RFC 3339 date-time such as "2024-09-02T08:14:00Z", got ${describe(v)}`);
    }
    const pat = rules.patterns && rules.patterns[k];
    if (pat && !pat[0].test(v)) throw invalid(`${where}${k} must be ${pat[1]}, got ${describe(v)}`);
    if (rules.min0 && rules.min0.includes(k) && v < 0) throw invalid(`${where}${k} must not be negative, got ${describe(v)}`);
  }
}

function checkRequired(rec, required, where) {
  for (const k of required) {
    if (rec[k] === undefined || rec[k] === null) throw invalid(`${where}${k} is required`);
  }
}

// ---------------------------------------------------------------------------------------------
// The server

// The database file: created when missing; every collection must exist before json-server's
// router is made, since it makes its routes from the collections it finds. Every record gets a
// canonical updated_at (the list's `since` and order compare them as text).
(function prepareFile() {
  let state = {};
  if (fs.existsSync(DB_FILE)) {
    try {
      state = JSON.parse(fs.readFileSync(DB_FILE, 'utf8') || '{}');
    } catch (e) {
      fail(`${DB_FILE}: ${e.message}`);
    }
    if (typeOf(state) !== 'object') fail(`${DB_FILE}: not a JSON object of collections`);
  }
  const now = new Date().toISOString();
  for (const name of Object.keys(RESOURCES)) {
    if (state[name] === undefined) state[name] = [];
    if (!Array.isArray(state[name])) fail(`${DB_FILE}: ${name} is not a list`);
    for (const rec of state[name]) {
      const t = Date.parse(rec.updated_at);
      rec.updated_at = Number.isNaN(t) ? now : new Date(t).toISOString();
      if (RESOURCES[name].created && !rec.created_at) rec.created_at = rec.updated_at;
    }
  }
  for (const name of Object.keys(state)) {
    if (!RESOURCES[name]) fail(`${DB_FILE}: unknown collection ${JSON.stringify(name)}; the resources are ${Object.keys(RESOURCES).join(', ')}`);
  }
  fs.writeFileSync(DB_FILE, JSON.stringify(state, null, 2));
})();

const router = jsonServer.router(DB_FILE);
const db = router.db;

// Ids: integers counting up per collection (order lines share one counter), never reused while
// the server runs.
const lastID = {};
function maxID(recs) {
  return recs.reduce((m, r) => (Number.isInteger(r.id) && r.id > m ? r.id : m), 0);
}
for (const name of Object.keys(RESOURCES)) lastID[name] = maxID(db.get(name).value());
lastID.lines = maxID(db.get('orders').value().flatMap((o) => (Array.isArray(o.lines) ? o.lines : [])));
const nextID = (name) => ++lastID[name];

// updated_at stamps: RFC 3339 UTC with milliseconds, never earlier than the previous one.
let lastStamp = '';
function stamp() {
  const s = new Date().toISOString();
  if (s > lastStamp) lastStamp = s;
  return lastStamp;
}

const find = (name, id) => db.get(name).getById(String(id)).value();

// prepare validates a create (current undefined), a replacement (PUT) or a patch (PATCH) of a
// record of resource name and returns the body json-server's router is to store.
function prepare(name, body, method, current) {
  const r = RESOURCES[name];
  if (typeOf(body) !== 'object') throw invalid(`the body must be a JSON object, got ${describe(body)}`);
  const clean = {};
  for (const [k, v] of Object.entries(body)) {
    if (!SERVER_OWNED.has(k)) clean[k] = v;
  }
  checkProps(clean, r.props, r, '');
  let rec;
  if (method === 'PATCH') {
    rec = Object.assign({}, current, clean);
  } else {
    rec = Object.assign({}, r.defaults, clean);
    if (current) {
      rec.id = current.id;
      if (r.created) rec.created_at = current.created_at;
    }
  }
  checkRequired(rec, r.required, '');
  for (const u of r.unique) {
    const key = (v) => (u.fold && typeof v === 'string' ? v.toLowerCase() : v);
    const other = db.get(name).find((o) => key(o[u.field]) === key(rec[u.field]) && (!current || o.id !== current.id)).value();
    if (other) throw invalid(`${u.field} ${describe(rec[u.field])} is already used by ${r.entity} ${other.id}`);
  }
  for (const [k, target] of Object.entries(r.refs || {})) {
    if (k in clean && !find(target, rec[k])) throw invalid(`${k} ${describe(rec[k])}: no ${RESOURCES[target].entity} has that id`);
  }
  if (r.lines && 'lines' in clean) rec.lines = prepareLines(rec.lines, r.lines, current);
  // The stored record: id first (POST adds it), then the schema's order.
  const out = current ? { id: current.id } : {};
  for (const k of Object.keys(r.props).concat(Object.keys(rec))) {
    if (k !== 'id' && k in rec) out[k] = rec[k];
  }
  const now = stamp();
  if (r.created) out.created_at = current ? current.created_at : now;
  out.updated_at = now;
  return out;
}

// prepareLines validates order lines and gives them their server-owned properties: a line
// whose id is one of the order's lines keeps it, any other line gets a new id.
function prepareLines(lines, rules, current) {
  const known = new Set(current && Array.isArray(current.lines) ? current.lines.map((l) => l.id) : []);
  const used = new Set();
  return lines.map((line, i) => {
    const where = `lines[${i}].`;
    if (typeOf(line) !== 'object') throw invalid(`lines[${i}] must be an object, got ${describe(line)}`);
    const clean = {};
    for (const [k, v] of Object.entries(line)) {
      if (!LINE_SERVER_OWNED.has(k) && k !== 'id') clean[k] = v;
    }
    checkProps(clean, rules.props, { required: rules.required }, where);
    checkRequired(clean, rules.required, where);
    if (clean.quantity < 1) throw invalid(`${where}quantity must be at least 1, got ${clean.quantity}`);
    if (clean.unit_price < 0) throw invalid(`${where}unit_price must not be negative, got ${clean.unit_price}`);
    for (const [k, target] of Object.entries(rules.refs)) {
      if (!find(target, clean[k])) throw invalid(`${where}${k} ${describe(clean[k])}: no ${RESOURCES[target].entity} has that id`);
    }
    const id = known.has(line.id) && !used.has(line.id) ? line.id : nextID('lines');
    used.add(id);
    return Object.assign({ id, order_id: current ? current.id : null }, clean);
  });
}

// ---------------------------------------------------------------------------------------------
// The list: since, cursor, limit, ids.

const LIST_PARAMS = new Set(['since', 'cursor', 'limit', 'ids']);
const MAX_LIMIT = 1000;

function encodeCursor(rec) {
  return Buffer.from(JSON.stringify({ u: rec.updated_at, i: rec.id })).toString('base64url');
}

function decodeCursor(s) {
  try {
    const c = JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
    if (typeof c.u === 'string' && !Number.isNaN(Date.parse(c.u)) && Number.isInteger(c.i)) return c;
  } catch (e) {
    // reported below
  }
  throw new APIError(400, 'invalid_parameter', 'cursor: not a cursor this server gave out');
}

function single(req, k) {
  const v = req.query[k];
  if (Array.isArray(v) || typeof v !== 'string') throw new APIError(400, 'invalid_parameter', `${k}: give it once, as text`);
  return v;
}

// listQuery turns the contract's parameters into json-server's filter and sort (records with
// updated_at at or after the lower bound, by updated_at then id) and keeps what the render
// needs (the cursor's position, the limit) in res.locals.list.
function listQuery(req, res) {
  for (const k of Object.keys(req.query)) {
    if (!LIST_PARAMS.has(k)) throw new APIError(400, 'invalid_parameter', `unknown query parameter ${JSON.stringify(k)}; the list takes since, cursor, limit and ids`);
  }
  let from = '';
  if (req.query.since !== undefined) {
    const s = single(req, 'since');
    const t = Date.parse(s);
    if (!RFC3339.test(s) || Number.isNaN(t)) throw new APIError(400, 'invalid_parameter', `since must be an RFC 3339 date-time such as "2024-09-02T08:14:00.000Z", got ${describe(s)}`);
    from = new Date(t).toISOString();
  }
  let after = null;
  if (req.query.cursor !== undefined) {
    after = decodeCursor(single(req, 'cursor'));
    if (after.u > from) from = after.u;
  }
  let limit = 100;
  if (req.query.limit !== undefined) {
    const l = single(req, 'limit');
    if (!/^\d+$/.test(l) || Number(l) < 1 || Number(l) > MAX_LIMIT) throw new APIError(400, 'invalid_parameter', `limit must be an integer from 1 to ${MAX_LIMIT}, got ${describe(l)}`);
    limit = Number(l);
  }
  const q = { _sort: 'updated_at,id', _order: 'asc,asc' };
  if (from) q.updated_at_gte = from;
  if (req.query.ids !== undefined) {
    const ids = single(req, 'ids').split(',').filter((s) => s !== '');
    if (ids.length === 0 || ids.length > 100) throw new APIError(400, 'invalid_parameter', 'ids must list 1 to 100 ids, separated by commas');
    q.id = ids;
  }
  req.query = q;
  res.locals.list = { after, limit };
}

// ---------------------------------------------------------------------------------------------
// Middlewares, in order.

const app = jsonServer.create();
app.disable('x-powered-by');
app.use(jsonServer.defaults({ logger: process.env.CRM_LOG === '1', noCors: true, static: path.join(__dirname, 'no-static-files') }));

// Authentication.
app.use((req, res, next) => {
  if (!TOKEN) return next();
  const got = Buffer.from(req.get('Authorization') || '');
  const want = Buffer.from(`Bearer ${TOKEN}`);
  if (got.length === want.length && crypto.timingSafeEqual(got, want)) return next();
  res.set('WWW-Authenticate', 'Bearer realm="custom-crm"');
  sendError(res, 401, 'unauthorized', 'missing or wrong bearer token (Authorization: Bearer <token>)');
});

// Routes: /<resource> and /<resource>/<id>, nothing else of json-server's.
const ROUTE = /^\/(products|customers|orders)(?:\/([^/]+))?\/?$/;
app.use((req, res, next) => {
  const m = ROUTE.exec(req.path);
  if (!m) return sendError(res, 404, 'not_found', `no such endpoint: ${req.method} ${req.path}; the resources are /products, /customers and /orders`);
  const allowed = m[2] === undefined ? ['GET', 'POST'] : ['GET', 'PUT', 'PATCH', 'DELETE'];
  if (!allowed.includes(req.method)) {
    res.set('Allow', allowed.join(', '));
    return sendError(res, 405, 'method_not_allowed', `${req.method} is not allowed on ${req.path}; use ${allowed.join(', ')}`);
  }
  if (m[2] !== undefined && !/^[1-9]\d*$/.test(m[2])) {
    return sendError(res, 404, 'not_found', `${RESOURCES[m[1]].entity} ${describe(decodeURIComponent(m[2]))} not found`);
  }
  // json-server's router honours X-HTTP-Method-Override, which would bypass the checks below.
  delete req.headers['x-http-method-override'];
  res.locals.resource = m[1];
  res.locals.id = m[2];
  next();
});

// Bodies: JSON only.
app.use((req, res, next) => {
  if (req.method === 'POST' || req.method === 'PUT' || req.method === 'PATCH') {
    if (!req.is('application/json')) return sendError(res, 415, 'unsupported_media_type', 'send the body as JSON (Content-Type: application/json)');
  }
  next();
});
app.use(jsonServer.bodyParser);
app.use((err, req, res, next) => {
  if (err && err.type === 'entity.parse.failed') return sendError(res, 400, 'invalid_json', `the body is not valid JSON: ${err.message}`);
  next(err);
});

// Idempotent creates: the first successful result of a key is replayed for the same key.
const IDEMPOTENCY = new Map(); // "<resource> <key>" → {status, body} or 'pending'
app.use((req, res, next) => {
  const key = req.get('Idempotency-Key');
  if (req.method !== 'POST' || key === undefined) return next();
  if (key === '' || key.length > 255) return sendError(res, 400, 'invalid_parameter', 'Idempotency-Key must be 1 to 255 characters');
  const slot = `${res.locals.resource} ${key}`;
  const seen = IDEMPOTENCY.get(slot);
  if (seen === 'pending') return sendError(res, 409, 'idempotency_key_in_use', 'a request with this Idempotency-Key is still being processed; retry later');
  if (seen) {
    res.set('Idempotent-Replayed', 'true');
    return res.status(seen.status).json(seen.body);
  }
  IDEMPOTENCY.set(slot, 'pending');
  res.locals.idempotency = slot;
  res.on('finish', () => {
    if (IDEMPOTENCY.get(slot) === 'pending') IDEMPOTENCY.delete(slot);
  });
  next();
});

// The contract's checks and stamps; json-server's router then stores and serves.
app.use((req, res, next) => {
  try {
    const name = res.locals.resource;
    const id = res.locals.id;
    if (req.method === 'GET' && id === undefined) {
      listQuery(req, res);
    } else if (req.method === 'GET' || req.method === 'DELETE') {
      req.query = {};
    } else if (req.method === 'POST') {
      const rec = prepare(name, req.body, 'POST');
      req.body = Object.assign({ id: nextID(name) }, rec);
      if (req.body.lines) req.body.lines.forEach((l) => (l.order_id = req.body.id));
    } else {
      const current = find(name, id);
      if (!current) throw new APIError(404, 'not_found', `${RESOURCES[name].entity} ${id} not found`);
      req.body = prepare(name, req.body, req.method, current);
    }
    next();
  } catch (e) {
    if (!(e instanceof APIError)) return next(e);
    sendError(res, e.status, e.code, e.message);
  }
});

router.render = (req, res) => {
  const name = res.locals.resource;
  const data = res.locals.data;
  if (res.statusCode === 404) {
    return sendError(res, 404, 'not_found', `${RESOURCES[name].entity} ${res.locals.id} not found`);
  }
  if (req.method === 'DELETE') return res.status(204).end();
  if (req.method === 'GET' && res.locals.id === undefined) {
    const { after, limit } = res.locals.list;
    let recs = data;
    if (after) recs = recs.filter((r) => r.updated_at > after.u || (r.updated_at === after.u && r.id > after.i));
    const page = recs.slice(0, limit);
    const more = recs.length > limit;
    return res.json({ data: page, next_cursor: more ? encodeCursor(page[page.length - 1]) : null });
  }
  if (req.method === 'POST' && res.locals.idempotency && res.statusCode === 201) {
    IDEMPOTENCY.set(res.locals.idempotency, { status: 201, body: JSON.parse(JSON.stringify(data)) });
  }
  res.json(data);
};
app.use(router);

app.use((err, req, res, next) => {
  process.stderr.write(`custom-crm: ${req.method} ${req.originalUrl}: ${err.stack || err}\n`);
  if (res.headersSent) return next(err);
  sendError(res, 500, 'internal', 'internal server error');
});

const server = app.listen(PORT, '127.0.0.1', () => {
  process.stdout.write(`Custom CRM listening on http://127.0.0.1:${server.address().port}\n`);
});
server.on('error', (e) => fail(`cannot listen on 127.0.0.1:${PORT}: ${e.message}`));
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => server.close(() => process.exit(0)));
}
// CRM_EXIT_ON_EOF=1: stop when standard input ends, which it does when the process that started
// the server dies in any way (a test harness killed by its timeout leaves no server behind).
if (process.env.CRM_EXIT_ON_EOF === '1') {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}
