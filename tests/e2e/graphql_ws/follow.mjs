// Follows one run's events with the reference graphql-ws client and prints one JSON line
// per event. Stops after `limit` events (then drops the connection, as a flaky network
// would), or when the server completes the stream. The pytest side judges the lines.
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, token, runId, afterSeq, limit] = process.argv.slice(2);
if (!url || !token || !runId) {
  console.error("usage: node follow.mjs <ws-url> <token> <run-id> [after-seq] [limit]");
  process.exit(2);
}

const query = `subscription($runId: ID!, $afterSeq: Int) {
  runEvents(runId: $runId, afterSeq: $afterSeq) {
    __typename seq
    ... on RunProgressEvent { fraction }
    ... on RunLogEvent { message }
    ... on RunResultEvent { status result }
  }
}`;

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${token}` },
  retryAttempts: 0,
  lazy: true,
});

const variables = { runId, afterSeq: afterSeq ? Number(afterSeq) : null };
const most = limit ? Number(limit) : Infinity;
let seen = 0;
try {
  for await (const result of client.iterate({ query, variables })) {
    if (result.errors) throw new Error(JSON.stringify(result.errors));
    console.log(JSON.stringify(result.data.runEvents));
    if (++seen >= most) break;
  }
} catch (error) {
  console.error(error instanceof Error ? error.message : JSON.stringify(error));
  process.exitCode = 1;
} finally {
  await client.dispose();
}
