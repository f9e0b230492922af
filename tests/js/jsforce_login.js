#!/usr/bin/env node
// A JWT bearer login done by clients we did not write: jsonwebtoken signs the assertion,
// jsforce exchanges it (Connection#authorize with the jwt-bearer grant), then queries and
// reads the identity. Used by tests/test_testing_faithfulness.py against the local org.
//
// Input (environment): SF_LOGIN_URL, SF_USERNAME, SF_CONSUMER_KEY, SF_PRIVATE_KEY_FILE,
// optional SF_AUDIENCE (default https://login.salesforce.com), SF_API_VERSION, SF_SOQL.
// Trust for the org's private CA comes from NODE_EXTRA_CA_CERTS.
// Output: one JSON object per line on stdout ({"event": "login" | "query" | "identity" | "error"}).
// Nothing secret (key, assertion, access token) is printed.
'use strict';

const fs = require('fs');
const jwt = require('jsonwebtoken');
const jsforce = require('jsforce');

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`environment variable ${name} is required`);
  }
  return value;
}

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function main() {
  const loginUrl = required('SF_LOGIN_URL');
  const username = required('SF_USERNAME');
  const consumerKey = required('SF_CONSUMER_KEY');
  const privateKey = fs.readFileSync(required('SF_PRIVATE_KEY_FILE'), 'utf8');
  const audience = process.env.SF_AUDIENCE || 'https://login.salesforce.com';
  const soql = process.env.SF_SOQL || 'SELECT Id, Name FROM Account';

  const assertion = jwt.sign({}, privateKey, {
    algorithm: 'RS256',
    issuer: consumerKey,
    subject: username,
    audience,
    expiresIn: 180,
  });

  const options = { oauth2: { loginUrl } };
  if (process.env.SF_API_VERSION) {
    options.version = process.env.SF_API_VERSION;
  }
  const conn = new jsforce.Connection(options);
  const userInfo = await conn.authorize({
    grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
    assertion,
  });
  emit({
    event: 'login',
    user_id: userInfo.id,
    org_id: userInfo.organizationId,
    instance_url: conn.instanceUrl,
    has_token: typeof conn.accessToken === 'string' && conn.accessToken.length > 0,
  });

  const result = await conn.query(soql);
  emit({
    event: 'query',
    total_size: result.totalSize,
    done: result.done,
    count: result.records.length,
    names: result.records.map((r) => r.Name),
    types: Array.from(new Set(result.records.map((r) => r.attributes && r.attributes.type))),
  });

  const identity = await conn.identity();
  emit({
    event: 'identity',
    username: identity.username,
    user_id: identity.user_id,
    organization_id: identity.organization_id,
  });
}

main().then(
  () => process.exit(0),
  (err) => {
    emit({ event: 'error', name: err && err.name, message: err && err.message });
    process.exit(1);
  },
);
