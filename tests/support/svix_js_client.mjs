// The svix JavaScript SDK (1.x or 2.x, installed from npm) as a client of a live postback:
// node svix_js_client.mjs <sdk dir> <server url> <token> <receiver url>
// Prints one JSON object with what the SDK read back; tests/api/test_svix_js_sdk.py checks it.
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const [sdkDir, serverUrl, token, hookUrl] = process.argv.slice(2);
const resolved = createRequire(`${sdkDir}/`).resolve("svix");
const { Svix } = await import(pathToFileURL(resolved).href);
const svix = new Svix(token, { serverUrl });
const version = createRequire(`${sdkDir}/`)("svix/package.json").version;
const major = Number(version.split(".")[0]);

async function until(what, read, done) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const finished = (id) =>
  until(`task ${id}`, () => svix.backgroundTask.get(id), (t) => t.status === "finished");

const since = new Date(Date.now() - 60_000);
const app = await svix.application.create({ name: `js sdk ${version}` });
// Each major version writes its own names: 1.x filterTypes and rateLimit, 2.x eventTypes
// and throttleRate. Both must read back what they wrote.
const fields =
  major === 1
    ? { filterTypes: ["a.b"], rateLimit: 5 }
    : { eventTypes: ["a.b"], throttleRate: 5 };
const created = await svix.endpoint.create(app.id, { url: hookUrl, ...fields });
const read = await svix.endpoint.get(app.id, created.id);
await svix.health.get();

const msg = await svix.message.create(app.id, { eventType: "a.b", payload: { n: 1 } });
const attempts = await until(
  "an attempt",
  () => svix.messageAttempt.listByMsg(app.id, msg.id),
  (page) => page.data.length > 0,
);
const attempt = attempts.data[0];
await svix.messageAttempt.expungeContent(app.id, msg.id, attempt.id);
const expunged = await svix.messageAttempt.get(app.id, msg.id, attempt.id);

// A second endpoint made after the message: replay-missing sends it that message.
const late = await svix.endpoint.create(app.id, { url: hookUrl });
const replay = await svix.endpoint.replayMissing(app.id, late.id, { since });
const replayed = await finished(replay.id);

const stats = await svix.statistics.aggregateAppStats({
  since,
  until: new Date(Date.now() + 60_000),
  appIds: [app.id],
});
const statsDone = await finished(stats.id);
const aggregate = await svix.statistics.aggregateEventTypes();
const aggregateDone = await finished(aggregate.id);
const destinations = await svix.messageAttempt.listAttemptedDestinations(app.id, msg.id);

console.log(
  JSON.stringify({
    version,
    appId: app.id,
    endpointId: created.id,
    read: {
      filterTypes: read.filterTypes ?? null,
      eventTypes: read.eventTypes ?? null,
      rateLimit: read.rateLimit ?? null,
      throttleRate: read.throttleRate ?? null,
    },
    expungedResponse: expunged.response,
    replay: { task: replay.task, data: replayed.data },
    stats: { task: stats.task, unresolved: stats.unresolvedAppIds, data: statsDone.data },
    aggregate: { task: aggregate.task, data: aggregateDone.data },
    destinations: destinations.data.map((d) => ({ id: d.id, status: d.status })),
  }),
);
