// Google's official Node client (@google-cloud/aiplatform, v1beta1, REST mode) as a contender.
//   node bench/node_client.js seq|all HOST PORT NAME N
// seq: N sequential cancelOperation calls; all: N calls at once with Promise.all.
// Trusts the fake server's certificate through NODE_EXTRA_CA_CERTS. Prints one JSON line.
'use strict';
const {v1beta1} = require('@google-cloud/aiplatform');
const {OAuth2Client} = require('google-auth-library');

async function main() {
  const [mode, host, port, name, nStr] = process.argv.slice(2);
  const n = Number(nStr);
  const auth = new OAuth2Client();
  auth.setCredentials({access_token: 'test-token', expiry_date: Date.now() + 3600 * 1000});
  const client = new v1beta1.JobServiceClient({
    apiEndpoint: host, port: Number(port), fallback: true, authClient: auth,
  });
  await client.cancelOperation({name}); // warm: connection, TLS, client setup
  const t0 = process.hrtime.bigint();
  let failed = 0;
  if (mode === 'seq') {
    for (let i = 0; i < n; i++) {
      try { await client.cancelOperation({name}); } catch (e) { failed++; }
    }
  } else {
    const calls = [];
    for (let i = 0; i < n; i++) calls.push(client.cancelOperation({name}).catch(() => { failed++; }));
    await Promise.all(calls);
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const rssKb = Math.round(process.resourceUsage().maxRSS);
  console.log(JSON.stringify({calls: n, seconds, rss_kb: rssKb, failed}));
  await client.close();
}
main().catch((e) => { console.error(e); process.exit(1); });
