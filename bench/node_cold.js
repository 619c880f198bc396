// make bench's cold start: Google's official Node client (@google-cloud/aiplatform, v1beta1, REST
// fallback) in a fresh process, credentials from a service-account key file, one getOperation.
//   node bench/node_cold.js HOST PORT KEY_FILE NAME self|exchange
// self: the client as generated (it sets useJWTAccessWithScope: a service account's self-signed
//   JWT is the token, aud https://{apiEndpoint}/, no token request);
// exchange: a google-auth JWT client with scopes and useJWTAccessWithScope off (the jwt-bearer
//   grant; google-auth sends it to
//   https://oauth2.googleapis.com/token whatever the file's token_uri, so a request interceptor
//   sends it to the fake's /token instead).
// Trusts the fake server's certificate through NODE_EXTRA_CA_CERTS. Prints one JSON line.
'use strict';
const t0 = process.hrtime.bigint();
const {v1beta1} = require('@google-cloud/aiplatform');
const {JWT} = require('google-auth-library');

async function main() {
  const [host, port, keyFile, name, mode] = process.argv.slice(2);
  const opts = {apiEndpoint: host, port: Number(port), fallback: true};
  if (mode === 'exchange') {
    const key = JSON.parse(require('fs').readFileSync(keyFile, 'utf8'));
    const jwt = new JWT({email: key.client_email, key: key.private_key, keyId: key.private_key_id,
      scopes: ['https://www.googleapis.com/auth/cloud-platform']});
    jwt.transporter.interceptors.request.add({
      resolved: async (config) => {
        if (String(config.url).startsWith('https://oauth2.googleapis.com/')) {
          config.url = new URL(`https://${host}:${port}/token`);
        }
        return config;
      },
    });
    opts.authClient = jwt;
  } else {
    opts.keyFilename = keyFile;
  }
  const client = new v1beta1.JobServiceClient(opts);
  if (mode === 'exchange') {
    // the generated client turns self-signed JWTs on for its auth (our JWT client itself): off again
    client.auth.useJWTAccessWithScope = false;
    client.auth.defaultServicePath = undefined;
  }
  const [op] = await client.getOperation({name});
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(JSON.stringify({ok: op.name === name, seconds}));
  await client.close();
}
main().catch((e) => { console.log(JSON.stringify({ok: false, error: String(e && e.stack || e)})); process.exit(1); });
