'use strict';
/*
 * s3rver with S3's conditional writes, for Tansu's durable storage.
 *
 * Tansu keeps a partition's end offset in watermark.json and updates it by
 * compare-and-swap: PUT with `If-None-Match: *` (create) or `If-Match: <etag>` (update),
 * retrying on 412. s3rver 3.7.1 ignores both headers, so a restarted broker's first
 * produce overwrites the stored end offset with a fresh one (records written again from
 * offset 0) and two produces racing on one partition both win (one batch lost). Also,
 * s3rver writes an object in place and answers a PUT before the file is complete, so a
 * read right after it can find the object empty or half written. This server checks the
 * preconditions, lets a write on a key go alone (reads go together), and writes each
 * object to a temporary file renamed into place once complete.
 *
 * usage: node s3rver_cas.js S3RVER_MODULE_DIR --directory DIR --address HOST --port N
 *        [--configure-bucket NAME] [--allow-mismatched-signatures] [--silent]
 */

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { Readable, Transform } = require('stream');
const { pipeline } = require('stream/promises');

function options(args) {
  const opts = { configureBuckets: [] };
  for (let i = 0; i < args.length; i++) {
    const flag = args[i];
    if (flag === '--directory') opts.directory = args[++i];
    else if (flag === '--address') opts.address = args[++i];
    else if (flag === '--port') opts.port = Number(args[++i]);
    else if (flag === '--configure-bucket') opts.configureBuckets.push({ name: args[++i], configs: [] });
    else if (flag === '--allow-mismatched-signatures') opts.allowMismatchedSignatures = true;
    else if (flag === '--silent') opts.silent = true;
    else throw new Error(`unknown option ${flag}`);
  }
  return opts;
}

// A PUT's preconditions against the stored object's etag (null: none stored):
// null to go ahead, else [status, S3 error code] as S3 answers.
function precondition(headers, etag) {
  const noneMatch = headers['if-none-match'];
  const match = headers['if-match'];
  if (noneMatch !== undefined && etag !== null && (noneMatch === '*' || same(noneMatch, etag))) {
    return [412, 'PreconditionFailed'];
  }
  if (match !== undefined) {
    if (etag === null) return [404, 'NoSuchKey'];
    if (match !== '*' && !same(match, etag)) return [412, 'PreconditionFailed'];
  }
  return null;
}

function escapeXml(text) {
  return text.replace(/[<>&'"]/g, c => `&#${c.charCodeAt(0)};`);
}

function same(tag, etag) {
  const bare = t => t.trim().replace(/^W\//, '').replace(/^"|"$/g, '');
  return tag.split(',').some(t => bare(t) === bare(etag));
}

// Per key, a write goes alone and reads go together, in the order they came: a read's
// stat, etag and open see one version (s3rver takes the size and the etag separately).
const gates = new Map();

async function guarded(key, write, work) {
  let gate = gates.get(key);
  if (gate === undefined) gates.set(key, (gate = { readers: 0, writing: false, waiting: [] }));
  if (gate.writing || gate.waiting.length || (write && gate.readers)) {
    await new Promise(resolve => gate.waiting.push({ write, resolve }));
  } else if (write) {
    gate.writing = true;
  } else {
    gate.readers++;
  }
  try {
    return await work();
  } finally {
    if (write) gate.writing = false;
    else gate.readers--;
    admit(key, gate);
  }
}

function admit(key, gate) {
  while (gate.waiting.length && !gate.writing) {
    const next = gate.waiting[0];
    if (next.write && gate.readers) break;
    gate.waiting.shift();
    if (next.write) gate.writing = true;
    else gate.readers++;
    next.resolve();
  }
  if (!gate.writing && !gate.readers && !gate.waiting.length) gates.delete(key);
}

// The store's putObject, writing a temporary file and renaming it into place when done
// (s3rver's own resolves before its write stream has finished). The temporary files
// live beside the data folder: a listing walking the bucket must not meet them.
function atomicPut(store) {
  const spool = `${path.resolve(store.rootDirectory)}.partial`;
  fs.mkdirSync(spool, { recursive: true });
  let serial = 0;
  return async object => {
    const target = store.getResourcePath(object.bucket, object.key, 'object');
    await fs.promises.mkdir(path.dirname(target), { recursive: true });
    const temporary = path.join(spool, `${process.pid}.${++serial}`);
    const md5 = crypto.createHash('md5');
    let size = 0;
    const content = Buffer.isBuffer(object.content) ? Readable.from([object.content]) : object.content;
    const count = new Transform({
      transform(chunk, encoding, done) {
        md5.update(chunk);
        size += chunk.length;
        done(null, chunk);
      },
    });
    try {
      await pipeline(content, count, fs.createWriteStream(temporary));
      await fs.promises.rename(temporary, target);
    } finally {
      await fs.promises.rm(temporary, { force: true });
    }
    const digest = md5.digest('hex');
    await store.putMetadata(object.bucket, object.key, object.metadata, digest);
    return { size, md5: digest };
  };
}

function objectOf(path) {
  const [bucket, ...rest] = path.replace(/^\//, '').split('/');
  return rest.length && rest.join('') ? [bucket, decodeURIComponent(rest.join('/'))] : null;
}

async function main() {
  const S3rver = require(process.argv[2]);
  const server = new S3rver(options(process.argv.slice(3)));
  server.store.putObject = atomicPut(server.store);
  const cas = async (ctx, next) => {
    const object = objectOf(ctx.path);
    if (object === null) return next();
    const write = ctx.method !== 'GET' && ctx.method !== 'HEAD';
    return guarded(ctx.path, write, async () => {
      const [bucket, key] = object;
      if (ctx.method === 'PUT' && (ctx.get('if-none-match') || ctx.get('if-match'))) {
        const etag = await server.store.getMetadata(bucket, key).then(
          meta => meta.etag,
          () => null,
        );
        const refused = precondition(ctx.headers, etag);
        if (refused !== null) {
          const [status, code] = refused;
          ctx.req.resume(); // drain the unread body
          ctx.status = status;
          ctx.type = 'application/xml';
          ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Key>${escapeXml(key)}</Key></Error>`;
          return;
        }
      }
      await next(); // a GET opens its file in its turn: a later rename leaves it intact
    });
  };
  server.middleware.unshift(cas);
  const { address, port } = await server.run();
  console.log('S3rver (conditional writes) listening on %s:%d', address, port);
}

module.exports = { precondition, guarded };

if (require.main === module) {
  main().catch(err => {
    console.error(err);
    process.exit(1);
  });
}
