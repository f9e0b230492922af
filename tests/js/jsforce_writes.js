#!/usr/bin/env node
// Writes through jsforce against the local org: Bulk API 2.0 ingest
// (bulk2.loadAndWaitForResults), sObject Collections (sobject(...).create/update/destroy/upsert
// with arrays), upsert by external id, composite / tree / batch (conn.requestPost), SOSL
// (conn.search), parameterizedSearch and the write rules (strict). Used by tests/test_testing_ingest.py,
// tests/test_testing_composite.py, tests/test_testing_upsert.py, tests/test_testing_search.py and
// tests/test_testing_rest_strict.py.
//
// Input (environment): SF_LOGIN_URL, SF_USERNAME, SF_CONSUMER_KEY, SF_PRIVATE_KEY_FILE,
// SF_API_VERSION, SF_STEPS (comma list of bulk2 | collections | upsert | composite | search | strict),
// SF_PREFIX (names of the records written), SF_SOSL (for search). Trust for the org's CA:
// NODE_EXTRA_CA_CERTS.
// Output: one JSON object per line ({"event": <step> | "login" | "error"}). Nothing secret.
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

async function login() {
  const assertion = jwt.sign({}, fs.readFileSync(required('SF_PRIVATE_KEY_FILE'), 'utf8'), {
    algorithm: 'RS256',
    issuer: required('SF_CONSUMER_KEY'),
    subject: required('SF_USERNAME'),
    audience: 'https://login.salesforce.com',
    expiresIn: 180,
  });
  const conn = new jsforce.Connection({
    oauth2: { loginUrl: required('SF_LOGIN_URL') },
    version: required('SF_API_VERSION'),
  });
  await conn.authorize({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion });
  emit({ event: 'login' });
  return conn;
}

async function bulk2(conn, prefix) {
  conn.bulk2.pollInterval = 20;
  conn.bulk2.pollTimeout = 30000;
  // the last row has no Name: jsforce writes null as #N/A, the org fails that row alone
  const input = [1, 2, 3].map((i) => ({ Name: `${prefix} ${i}`, NumberOfEmployees: i }));
  input.push({ Name: null, NumberOfEmployees: 4 });
  const inserted = await conn.bulk2.loadAndWaitForResults({ object: 'Account', operation: 'insert', input });
  const ids = inserted.successfulResults.map((r) => r.sf__Id);
  const updated = await conn.bulk2.loadAndWaitForResults({
    object: 'Account',
    operation: 'update',
    input: ids.map((Id) => ({ Id, NumberOfEmployees: 100 })),
  });
  const deleted = await conn.bulk2.loadAndWaitForResults({
    object: 'Account',
    operation: 'delete',
    input: [{ Id: ids[0] }],
  });
  emit({
    event: 'bulk2',
    inserted: inserted.successfulResults.length,
    created: inserted.successfulResults.map((r) => r.sf__Created),
    names: inserted.successfulResults.map((r) => r.Name),
    failed: inserted.failedResults.map((r) => r.sf__Error),
    unprocessed: inserted.unprocessedRecords.length,
    ids,
    updated: updated.successfulResults.length,
    deleted: deleted.successfulResults.map((r) => r.sf__Id),
  });
}

async function collections(conn, prefix) {
  const account = conn.sobject('Account');
  const created = await account.create([{ Name: `${prefix} A` }, { Name: `${prefix} B` }, { Website: 'no name' }]);
  const ids = created.filter((r) => r.success).map((r) => r.id);
  const updated = await account.update(ids.map((Id) => ({ Id, NumberOfEmployees: 7 })));
  const retrieved = await account.retrieve(ids, { fields: ['Id', 'Name', 'NumberOfEmployees'] });
  const destroyed = await account.destroy([ids[0]]);
  emit({
    event: 'collections',
    created: created.map((r) => ({ success: r.success, id: r.id || null, errors: r.errors })),
    updated: updated.map((r) => r.success),
    retrieved: retrieved.map((r) => r && { Name: r.Name, NumberOfEmployees: r.NumberOfEmployees }),
    destroyed: destroyed.map((r) => ({ success: r.success, id: r.id })),
  });
}

async function upsert(conn, prefix) {
  const account = conn.sobject('Account');
  // an array goes through sObject Collections (PATCH /composite/sobjects/Account/Legacy_Id__c)
  const many = await account.upsert([
    { Legacy_Id__c: 'J-1', Name: `${prefix} 1` },
    { Legacy_Id__c: 'J-2', Name: `${prefix} 2` },
  ], 'Legacy_Id__c');
  // one record goes to /sobjects/Account/Legacy_Id__c/J-1
  const one = await account.upsert({ Legacy_Id__c: 'J-1', Name: `${prefix} 1, again` }, 'Legacy_Id__c');
  emit({
    event: 'upsert',
    many: many.map((r) => ({ success: r.success, created: r.created })),
    one: { success: one.success, created: one.created },
  });
}

async function composite(conn, prefix) {
  const v = `/services/data/v${conn.version}`;
  const graph = await conn.requestPost(`${v}/composite`, {
    allOrNone: true,
    compositeRequest: [
      { method: 'POST', url: `${v}/sobjects/Account`, referenceId: 'acct', body: { Name: `${prefix} Parent` } },
      { method: 'POST', url: `${v}/sobjects/Contact`, referenceId: 'kid',
        body: { LastName: `${prefix} Kid`, AccountId: '@{acct.id}' } },
    ],
  });
  const tree = await conn.requestPost(`${v}/composite/tree/Account`, {
    records: [{ attributes: { type: 'Account', referenceId: 'root' }, Name: `${prefix} Tree`,
      Contacts: { records: [{ attributes: { type: 'Contact', referenceId: 'leaf' }, LastName: `${prefix} Leaf` }] } }],
  });
  const batch = await conn.requestPost(`${v}/composite/batch`, {
    batchRequests: [{ method: 'GET', url: `v${conn.version}/query?q=SELECT+COUNT()+FROM+Contact` }],
  });
  emit({
    event: 'composite',
    graph: graph.compositeResponse.map((r) => r.httpStatusCode),
    tree: { hasErrors: tree.hasErrors, refs: tree.results.map((r) => r.referenceId) },
    batch: batch.results.map((r) => [r.statusCode, r.result.totalSize]),
  });
}

async function search(conn) {
  const result = await conn.search(required('SF_SOSL'));
  const params = await conn.requestGet(
    `/services/data/v${conn.version}/parameterizedSearch?q=Zebra&sobject=Account&Account.fields=Id,Name`);
  emit({
    event: 'search',
    records: result.searchRecords.map((r) => ({ type: r.attributes.type, Id: r.Id, Name: r.Name })),
    parameterized: params.searchRecords.map((r) => r.Name).sort(),
  });
}

async function refusal(call) {
  try {
    await call();
    return null;
  } catch (err) {
    return err.errorCode || err.name;
  }
}

async function strict(conn, prefix) {
  // Salesforce's write rules: "" is null, audit fields and out-of-range numbers refused, ids in any case
  const account = conn.sobject('Account');
  const created = await account.create({ Name: `${prefix} Blank`, Phone: '' });
  const upper = created.id.toUpperCase();
  const fetched = await account.retrieve(upper);
  emit({
    event: 'strict',
    id: created.id,
    phone: fetched.Phone,
    fetchedId: fetched.Id,
    audit: await refusal(() => account.create({ Name: `${prefix} Audit`, CreatedDate: '2020-01-01T00:00:00Z' })),
    range: await refusal(() => account.create({ Name: `${prefix} Big`, NumberOfEmployees: 12345678901 })),
    nulls: (await conn.query(`SELECT Id FROM Account WHERE Phone = null AND Name = '${prefix} Blank'`)).totalSize,
  });
}

async function main() {
  const steps = (process.env.SF_STEPS || '').split(',').filter(Boolean);
  const prefix = process.env.SF_PREFIX || 'JS Write';
  const conn = await login();
  for (const step of steps) {
    if (step === 'bulk2') await bulk2(conn, prefix);
    else if (step === 'collections') await collections(conn, prefix);
    else if (step === 'upsert') await upsert(conn, prefix);
    else if (step === 'composite') await composite(conn, prefix);
    else if (step === 'search') await search(conn);
    else if (step === 'strict') await strict(conn, prefix);
    else throw new Error(`unknown step ${step}`);
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    emit({ event: 'error', name: err && err.name, message: err && err.message, errorCode: err && err.errorCode });
    process.exit(1);
  },
);
