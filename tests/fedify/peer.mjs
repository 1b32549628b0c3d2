// A real Fedify instance for feedfed's interop tests: one Node process, loopback only.
//
// It serves a Fedify federation with one or more Person actors (default: alice) and a small
// JSON control API under /_control/ on the same server:
//
//   POST /_control/follow    {"actor": URL, "as"?: name}  -> the actor is looked up by URL and
//                            followed; answers {"id", "actor", "inbox", "sharedInbox"} once the
//                            Follow was delivered (2xx from the remote inbox), 502 otherwise
//   POST /_control/unfollow  {"actor": URL, "as"?: name}  -> Undo(Follow) of an earlier follow
//   GET  /_control/received  -> {"activities": [...]}: every activity an inbox listener ran for.
//                            Fedify runs listeners only after it verified the sender (HTTP
//                            Signatures unless an embedded signature or proof verified first) and
//                            that the signer owns the activity, so each entry is a verified one.
//   GET  /_control/deliveries -> {"deliveries": [...]}: every POST to an inbox with Fedify's
//                            answer (also 401s and duplicates, which reach no listener)
//
// Usage: node peer.mjs [--port N] [--actors alice,bob]   (port 0 = any free port)
// Prints "READY <port>" on stdout once it listens on 127.0.0.1. FEDIFY_PEER_DEBUG=1 logs
// Fedify's own debug output to stderr.
//
// Fedify does WebFinger over https only, which a bridge on loopback http cannot answer, so
// follows name the remote actor by URL. Every outgoing TCP connection is checked: anything but
// loopback is refused before DNS, so a test can never reach the internet through this peer.

import { randomUUID } from "node:crypto";
import { AsyncLocalStorage } from "node:async_hooks";
import { createServer } from "node:http";
import net from "node:net";
import process from "node:process";
import { Writable } from "node:stream";
import { parseArgs } from "node:util";

import {
  Activity,
  createFederation,
  Endpoints,
  Follow,
  generateCryptoKeyPair,
  isActor,
  MemoryKvStore,
  Person,
  Undo,
} from "@fedify/fedify";
import { configure, getStreamSink } from "@logtape/logtape";

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);
const CONTROL_BODY_LIMIT = 1024 * 1024;

// --- the loopback tripwire -------------------------------------------------------------------

// Fedify fetches actors, keys and JSON-LD contexts through Node's fetch, which connects through
// net.Socket; checking here covers fetch, http, https and tls alike.
const originalConnect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function guardedConnect(...args) {
  let options = args[0];
  if (Array.isArray(options)) options = options[0]; // net.connect() passes normalized args
  let host;
  if (options !== null && typeof options === "object") {
    host = options.path != null ? null : (options.host ?? "localhost");
  } else if (typeof options === "number" || /^\d+$/.test(String(options))) {
    host = typeof args[1] === "string" ? args[1] : "localhost";
  } else {
    host = null; // a Unix socket path
  }
  if (host != null && !LOOPBACK_HOSTS.has(host)) {
    const error = new Error(`fedify peer refuses to connect to ${host}: loopback only`);
    process.stderr.write(`${error.message}\n`);
    error.code = "EFEDIFYPEERNONLOOPBACK";
    throw error;
  }
  return originalConnect.apply(this, args);
};

// --- arguments -------------------------------------------------------------------------------

const { values: argv } = parseArgs({
  options: {
    port: { type: "string", default: process.env.FEDIFY_PEER_PORT ?? "0" },
    actors: { type: "string", default: process.env.FEDIFY_PEER_ACTORS ?? "alice" },
  },
});
const requestedPort = Number.parseInt(argv.port, 10);
const actorNames = argv.actors.split(",").map((name) => name.trim()).filter(Boolean);
if (!Number.isInteger(requestedPort) || requestedPort < 0 || requestedPort > 65535) {
  throw new Error(`invalid --port ${argv.port}`);
}
if (actorNames.length === 0 || !actorNames.every((name) => /^[a-z0-9_]+$/.test(name))) {
  throw new Error(`invalid --actors ${argv.actors}: lowercase names separated by commas`);
}

if (process.env.FEDIFY_PEER_DEBUG) {
  await configure({
    // stderr, so stdout carries nothing but the READY line
    sinks: { stderr: getStreamSink(Writable.toWeb(process.stderr)) },
    loggers: [
      { category: "fedify", sinks: ["stderr"], lowestLevel: "debug" },
      { category: ["logtape", "meta"], sinks: ["stderr"], lowestLevel: "warning" },
    ],
    contextLocalStorage: new AsyncLocalStorage(),
  });
}

// --- state -----------------------------------------------------------------------------------

// One RSA key (HTTP Signatures, LD signatures) and one Ed25519 key (object integrity proofs) per
// actor, as Fedify's own apps have; made at start, so every run has fresh keys.
const keyPairs = new Map();
for (const name of actorNames) {
  keyPairs.set(name, [
    await generateCryptoKeyPair("RSASSA-PKCS1-v1_5"),
    await generateCryptoKeyPair("Ed25519"),
  ]);
}
const received = [];
const deliveries = [];
const follows = new Map(); // `${local name} ${remote actor id}` -> {follow, target}

// --- the federation --------------------------------------------------------------------------

const server = createServer((req, res) => {
  handle(req, res).catch((error) => {
    process.stderr.write(`fedify peer: unhandled error on ${req.method} ${req.url}: ${error.stack}\n`);
    if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
    res.end(String(error));
  });
});
await new Promise((resolve, reject) => {
  server.once("error", reject);
  server.listen(requestedPort, "127.0.0.1", resolve);
});
// The origin needs the port, so the federation is made after listen(); nobody knows the port
// (and so nobody sends a request) before the READY line below.
const port = server.address().port;
const origin = `http://127.0.0.1:${port}`;

const federation = createFederation({
  kv: new MemoryKvStore(),
  origin,
  // Loopback is where every test party lives; the tripwire above keeps it the only place.
  allowPrivateAddress: true,
  skipSignatureVerification: false,
});

federation
  .setActorDispatcher("/users/{identifier}", async (ctx, identifier) => {
    if (!keyPairs.has(identifier)) return null;
    const keys = await ctx.getActorKeyPairs(identifier);
    return new Person({
      id: ctx.getActorUri(identifier),
      preferredUsername: identifier,
      name: `${identifier} (Fedify test peer)`,
      inbox: ctx.getInboxUri(identifier),
      endpoints: new Endpoints({ sharedInbox: ctx.getInboxUri() }),
      url: ctx.getActorUri(identifier),
      publicKey: keys[0].cryptographicKey,
      assertionMethods: keys.map((key) => key.multikey),
    });
  })
  .setKeyPairsDispatcher((_ctx, identifier) => keyPairs.get(identifier) ?? []);

// One listener on Activity catches every type (Accept, Reject, Create, Update, Delete, Undo,
// Move, ...): Fedify picks the most specific registered class, and the peer records them all.
federation
  .setInboxListeners("/users/{identifier}/inbox", "/inbox")
  .on(Activity, (ctx, activity) => {
    const { raw, signature } = ctx.data;
    const embedded = [];
    if (raw !== null && typeof raw === "object") {
      if ("signature" in raw) embedded.push("ld-signature");
      if ("proof" in raw) embedded.push("proof");
    }
    received.push({
      seq: received.length + 1,
      type: typeof raw?.type === "string" ? raw.type : activity.constructor.name,
      id: activity.id?.href ?? null,
      actor: activity.actorId?.href ?? null,
      object: activity.objectId?.href ?? null,
      objectType: typeof raw?.object?.type === "string" ? raw.object.type : null,
      recipient: ctx.recipient ?? null,
      inbox: ctx.data.path,
      verified: true,
      // Fedify tries embedded signatures first and HTTP Signatures only when none verified.
      verifiedBy: embedded.length === 0 ? "http-signatures" : `http-signatures or ${embedded.join(" or ")}`,
      signature,
      activity: raw,
      receivedAt: new Date().toISOString(),
    });
  })
  .onError((_ctx, error) => {
    process.stderr.write(`fedify peer: inbox error: ${error.stack ?? error}\n`);
  });

// --- HTTP glue: Node request -> Fetch Request -> Fedify or the control API ---------------------

async function handle(req, res) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const body = Buffer.concat(chunks);
  const url = new URL(req.url, origin);
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
  }
  const request = new Request(url, {
    method: req.method,
    headers,
    body: req.method === "GET" || req.method === "HEAD" ? undefined : body,
  });
  const response = url.pathname.startsWith("/_control/")
    ? await control(request, url)
    : await federate(request, url, body);
  res.writeHead(response.status, Object.fromEntries(response.headers));
  res.end(Buffer.from(await response.arrayBuffer()));
}

function isInboxPath(pathname) {
  return pathname === "/inbox" || /^\/users\/[^/]+\/inbox$/.test(pathname);
}

function parseSignatureHeader(value) {
  if (value == null) return null;
  const fields = {};
  for (const match of value.matchAll(/([A-Za-z]+)=(?:"([^"]*)"|(\d+))/g)) {
    fields[match[1]] = match[2] ?? match[3];
  }
  return {
    keyId: fields.keyId ?? null,
    algorithm: fields.algorithm ?? null,
    headers: (fields.headers ?? "date").split(/\s+/).filter(Boolean),
  };
}

async function federate(request, url, body) {
  const inbox = request.method === "POST" && isInboxPath(url.pathname);
  let raw = null;
  if (inbox) {
    try {
      raw = JSON.parse(body.toString("utf8"));
    } catch {
      raw = null; // Fedify answers 400 itself; the delivery log shows it
    }
  }
  const signature = parseSignatureHeader(request.headers.get("signature"));
  const response = await federation.fetch(request, {
    contextData: { path: url.pathname, raw, signature },
  });
  if (inbox) {
    const answer = await response.clone().text();
    deliveries.push({
      seq: deliveries.length + 1,
      path: url.pathname,
      status: response.status,
      answer: answer.slice(0, 500),
      activityId: typeof raw?.id === "string" ? raw.id : null,
      type: typeof raw?.type === "string" ? raw.type : null,
      signature,
      headers: Object.fromEntries(request.headers),
      receivedAt: new Date().toISOString(),
    });
  }
  return response;
}

// --- the control API -------------------------------------------------------------------------

function json(status, value) {
  return new Response(JSON.stringify(value), {
    status,
    headers: { "content-type": "application/json" },
  });
}

class ControlError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function readCommand(request) {
  const text = await request.text();
  if (text.length > CONTROL_BODY_LIMIT) throw new ControlError(413, "command too large");
  let command;
  try {
    command = JSON.parse(text || "{}");
  } catch (error) {
    throw new ControlError(400, `command is not JSON: ${error.message}`);
  }
  const as = command.as ?? actorNames[0];
  if (!keyPairs.has(as)) throw new ControlError(400, `no local actor ${JSON.stringify(as)}`);
  if (typeof command.actor !== "string") throw new ControlError(400, '"actor" must be a URL');
  let actorUrl;
  try {
    actorUrl = new URL(command.actor);
  } catch {
    throw new ControlError(400, `"actor" is not a URL: ${command.actor}`);
  }
  return { as, actorUrl };
}

async function lookUpActor(ctx, as, actorUrl) {
  // A signed fetch, as Fedify apps do when they look up a handle, so authorized-fetch
  // servers answer too.
  const documentLoader = await ctx.getDocumentLoader({ identifier: as });
  let target;
  try {
    target = await ctx.lookupObject(actorUrl, { documentLoader });
  } catch (error) {
    throw new ControlError(502, `looking up ${actorUrl.href} failed: ${error.message}`);
  }
  if (target == null) throw new ControlError(502, `${actorUrl.href} did not resolve to an object`);
  if (!isActor(target)) throw new ControlError(422, `${actorUrl.href} is not an actor`);
  if (target.id?.href !== actorUrl.href) {
    throw new ControlError(502, `${actorUrl.href} answered with id ${target.id?.href}`);
  }
  return target;
}

async function send(ctx, as, target, activity) {
  try {
    // immediate: the control call returns only after the remote inbox answered, and a refusal
    // reaches the test as an error instead of a retry in the background.
    await ctx.sendActivity({ identifier: as }, target, activity, { immediate: true });
  } catch (error) {
    throw new ControlError(502, `delivering ${activity.id.href} failed: ${error.message}`);
  }
}

const commands = {
  async "POST /_control/follow"(request, ctx) {
    const { as, actorUrl } = await readCommand(request);
    const target = await lookUpActor(ctx, as, actorUrl);
    const follow = new Follow({
      id: new URL(`/users/${as}/follows/${randomUUID()}`, origin),
      actor: ctx.getActorUri(as),
      object: target.id,
    });
    await send(ctx, as, target, follow);
    follows.set(`${as} ${target.id.href}`, { follow, target });
    return json(200, {
      id: follow.id.href,
      actor: target.id.href,
      inbox: target.inboxId?.href ?? null,
      sharedInbox: target.endpoints?.sharedInbox?.href ?? null,
    });
  },

  async "POST /_control/unfollow"(request, ctx) {
    const { as, actorUrl } = await readCommand(request);
    const key = `${as} ${actorUrl.href}`;
    const entry = follows.get(key);
    if (entry == null) throw new ControlError(404, `${as} does not follow ${actorUrl.href}`);
    const undo = new Undo({
      id: new URL(`/users/${as}/undos/${randomUUID()}`, origin),
      actor: ctx.getActorUri(as),
      object: entry.follow,
    });
    await send(ctx, as, entry.target, undo);
    follows.delete(key);
    return json(200, { id: undo.id.href, object: entry.follow.id.href });
  },

  "GET /_control/received"() {
    return json(200, { activities: received });
  },

  "GET /_control/deliveries"() {
    return json(200, { deliveries });
  },
};

async function control(request, url) {
  const command = commands[`${request.method} ${url.pathname}`];
  if (command == null) return json(404, { error: `no command ${request.method} ${url.pathname}` });
  try {
    return await command(request, federation.createContext(new URL(origin), {}));
  } catch (error) {
    if (error instanceof ControlError) return json(error.status, { error: error.message });
    throw error;
  }
}

// --- lifecycle -------------------------------------------------------------------------------

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
process.stdout.write(`READY ${port}\n`);
