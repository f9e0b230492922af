#!/usr/bin/env node
// jsforce against the local org's Bulk API 1.0 ingest (XML jobs, CSV batches: jsforce's own
// choice) and the Metadata API retrieve (<retrieve><request>, no singlePackage). Used by
// tests/test_testing_bulk1_ingest.py.
//
// Input (environment): SF_LOGIN_URL, SF_USERNAME, SF_CONSUMER_KEY, SF_PRIVATE_KEY_FILE,
// SF_API_VERSION. Trust for the org's CA comes from NODE_EXTRA_CA_CERTS.
// Output: one JSON object per line ({"event": "insert" | "update" | "retrieve" | "error"}).
// Nothing secret (key, assertion, access token) is printed.
'use strict';

const fs = require('fs');
const jwt = require('jsonwebtoken');
const jsforce = require('jsforce');

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function main() {
  const env = process.env;
  const assertion = jwt.sign({}, fs.readFileSync(env.SF_PRIVATE_KEY_FILE, 'utf8'), {
    algorithm: 'RS256',
    issuer: env.SF_CONSUMER_KEY,
    subject: env.SF_USERNAME,
    audience: 'https://login.salesforce.com',
    expiresIn: 180,
  });
  const conn = new jsforce.Connection({ oauth2: { loginUrl: env.SF_LOGIN_URL }, version: env.SF_API_VERSION });
  await conn.authorize({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion });
  conn.bulk.pollInterval = 20;

  const inserted = await conn.bulk.load('Account', 'insert', [
    { Name: 'Js One', Industry: 'Energy' },
    { Name: 'Js Two', Industry: 'Energy' },
    { Name: '', Industry: 'Energy' }, // jsforce takes the columns of the first record
  ]);
  emit({ event: 'insert', results: inserted });

  const ok = inserted.filter((r) => r.success);
  const updated = await conn.bulk.load('Account', 'update', ok.map((r, i) => ({ Id: r.id, Name: `Js Renamed ${i}` })));
  emit({ event: 'update', results: updated });

  const result = await conn.metadata
    .retrieve({ apiVersion: env.SF_API_VERSION, unpackaged: { types: [{ name: 'ApexClass', members: ['*'] }] } })
    .complete(true);
  emit({ event: 'retrieve', success: result.success, zip: result.zipFile });
}

main().then(
  () => process.exit(0),
  (err) => {
    emit({ event: 'error', name: err && err.name, message: err && err.message });
    process.exit(1);
  },
);
