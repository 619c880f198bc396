// make fidelity (credentials): google-auth-library reads a credentials file pointing at the fake
// server and makes one authorized GET there, so bench/fidelity_auth.lua can compare the requests
// it sent (token exchange, STS, IAM Credentials, subject token, AWS metadata) with vertexops'.
//   node bench/fidelity_auth.js FILE URL [self_signed]
// Google's fixed hosts are sent to the fake instead (same path), by a wrapper of gaxios' request:
// google-auth ignores a file's token_uri (https://oauth2.googleapis.com/token) and an
// impersonated_service_account's service_account_impersonation_url (it builds
// https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/TARGET:generateAccessToken);
// every other URL comes from the file. self_signed: a service account's client with
// useJWTAccessWithScope (what Google's generated clients set). Prints one JSON line.
'use strict';
const {Gaxios} = require('gaxios');
const {GoogleAuth} = require('google-auth-library');

const [file, url, mode] = process.argv.slice(2);
const origin = new URL(url).origin;
const request = Gaxios.prototype.request;
Gaxios.prototype.request = function (opts) {
  const u = new URL(String(opts.url));
  if (u.protocol === 'https:' && u.hostname.endsWith('.googleapis.com')) opts.url = origin + u.pathname + u.search;
  return request.call(this, opts);
};

async function main() {
  const auth = new GoogleAuth({keyFile: file, scopes: ['https://www.googleapis.com/auth/cloud-platform']});
  const client = await auth.getClient();
  if (mode === 'self_signed') client.useJWTAccessWithScope = true;
  const res = await client.request({url});
  console.log(JSON.stringify({ok: res.status === 200}));
}
main().catch((e) => { console.log(JSON.stringify({ok: false, error: String(e && e.stack || e)})); process.exit(1); });
