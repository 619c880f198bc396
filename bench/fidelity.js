// make fidelity: Google's official Node client (@google-cloud/aiplatform, REST fallback) makes the
// operations calls vertexops makes, against the fake server, so bench/fidelity.lua can compare the
// requests side by side from the fake's log.
//   node bench/fidelity.js HOST PORT VERSION NAME WAIT_NAME PARENT
// Calls, in this order: cancel NAME, get NAME, list PARENT (filter done=false, page size 10),
// delete NAME. (The client has no :wait: its LROperation.promise() polls getOperation; WAIT_NAME is
// unused.) Prints one JSON line {"ok":true} or the error.
'use strict';
const aiplatform = require('@google-cloud/aiplatform');
const {OAuth2Client} = require('google-auth-library');

async function main() {
  const [host, port, version, name, , parent] = process.argv.slice(2);
  const auth = new OAuth2Client();
  auth.setCredentials({access_token: 'test-token', expiry_date: Date.now() + 3600 * 1000});
  const client = new aiplatform[version].JobServiceClient({
    apiEndpoint: host, port: Number(port), fallback: true, authClient: auth,
  });
  await client.cancelOperation({name});
  await client.getOperation({name});
  // the generated client offers listOperationsAsync only; the operations client under it the call
  await client.operationsClient.listOperations({name: parent, filter: 'done=false', pageSize: 10});
  await client.deleteOperation({name});
  console.log(JSON.stringify({ok: true}));
  await client.close();
}
main().catch((e) => { console.log(JSON.stringify({ok: false, error: String(e && e.stack || e)})); process.exit(1); });
