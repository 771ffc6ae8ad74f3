// The bin-CSV reader of the page and the Node scorer: the C++ reader (csrc/binparse.cpp,
// through the C interface of csrc/include/chromaformer.h) compiled to WebAssembly by
// export/wasm/build into cfreader.mjs + cfreader.wasm beside this file. One parser for
// Python, C, Node and the browser: the same checks, the same one-line messages.
//
// readBatches(chunks, path, layout, opts) takes decompressed byte chunks (an async
// iterable of Uint8Array) and yields {ids, labels, counts, n} batches of whole genes, as
// it streams: the chunks pass through a file of the module's in-memory file system whose
// reads are served from a queue, topped up before each batch with enough lines for it, so
// memory stays bounded by a batch and a chunk, whatever the file's size. No browser or
// Node API here: the caller hands in the .wasm bytes (loadReader).
import { FormatError } from './bincsv.mjs';
import factory from './cfreader.mjs';

const BATCH_BYTES = 40; // chromaformer_batch on wasm32: 3 x int64 then 3 pointers
const OPTIONS_BYTES = 24; // chromaformer_reader_options: 2 x int32, a pointer, an int64
const ERR_BYTES = 2048;
const MAX_AHEAD = 64 << 20; // bytes queued ahead of the reader at most
const EIO = 29; // emscripten's errno for an I/O error

function newlines(bytes) {
  let n = 0;
  for (let i = bytes.indexOf(10); i !== -1; i = bytes.indexOf(10, i + 1)) n++;
  return n;
}

// "PATH[:LINE[:COLUMN]]: what" from the C reader as the FormatError of bincsv.mjs.
function formatError(path, message) {
  let line = 0;
  let column = 0;
  let what = message;
  if (message.startsWith(`${path}:`)) {
    const m = /^(?::(\d+))?(?::(\d+))?: ([\s\S]*)$/.exec(message.slice(path.length));
    if (m) {
      line = Number(m[1] || 0);
      column = Number(m[2] || 0);
      what = m[3];
    }
  }
  return new FormatError(path, line, column, what);
}

let files = 0; // names of the staging files, one per open reader

export async function loadReader(wasmBinary) {
  const M = await factory({ wasmBinary, print: () => {}, printErr: () => {} });

  function cString(s, heap) {
    const n = M.lengthBytesUTF8(s) + 1;
    const p = M._malloc(n);
    heap.push(p);
    M.stringToUTF8(s, p, n);
    return p;
  }

  // A regular file at `file` whose reads come from `queue` ({chunks, at, eof}).
  function stagingFile(file, queue) {
    M.FS.writeFile(file, new Uint8Array(0));
    const node = M.FS.lookupPath(file).node;
    node.stream_ops = {
      ...node.stream_ops,
      read(stream, buffer, offset, length) {
        let done = 0;
        while (done < length && queue.chunks.length) {
          const c = queue.chunks[0];
          const n = Math.min(length - done, c.length - queue.at);
          buffer.set(c.subarray(queue.at, queue.at + n), offset + done);
          done += n;
          queue.at += n;
          if (queue.at === c.length) {
            queue.chunks.shift();
            queue.at = 0;
          }
        }
        // Reading past the lines topped up (never expected): an I/O error, not an end.
        if (done === 0 && !queue.eof && length > 0) throw new M.FS.ErrnoError(EIO);
        return done;
      },
    };
  }

  async function* readBatches(chunks, path, layout, opts = {}) {
    const batchSize = opts.batchSize || 1024;
    const bins = layout.bins;
    const iterator = chunks[Symbol.asyncIterator] ? chunks[Symbol.asyncIterator]()
      : chunks[Symbol.iterator]();
    const queue = { chunks: [], at: 0, eof: false, lines: 0 };
    // Enough lines queued for `lines` lines of the file, or the end of it, or MAX_AHEAD
    // bytes (a file without line ends: the reader refuses a line past its limit).
    const ahead = () => queue.chunks.reduce((s, c) => s + c.length, -queue.at);
    const topUp = async (lines) => {
      while (!queue.eof && queue.lines < lines && ahead() < MAX_AHEAD) {
        const { done, value } = await iterator.next();
        if (done) {
          queue.eof = true;
        } else if (value.length) {
          const bytes = value instanceof Uint8Array ? value : new Uint8Array(value);
          queue.chunks.push(bytes);
          queue.lines += newlines(bytes);
        }
      }
    };
    const file = `/staging-${files++}.csv`;
    stagingFile(file, queue);
    const heap = [];
    let reader = 0;
    try {
      const err = M._malloc(ERR_BYTES);
      heap.push(err);
      const names = layout.marks.map((m) => cString(m, heap));
      const namesPtr = M._malloc(4 * Math.max(1, names.length));
      heap.push(namesPtr);
      M.HEAPU32.set(names, namesPtr >> 2);
      const options = M._malloc(OPTIONS_BYTES);
      heap.push(options);
      M.HEAP32.set([1, opts.integerCounts ? 1 : 0, namesPtr, 0, names.length, 0], options >> 2);
      const out = M._malloc(4);
      heap.push(out);
      const batch = M._malloc(BATCH_BYTES);
      heap.push(batch);
      // Messages name the caller's path: the reader is opened on the staging file and its
      // messages carry that name, replaced by `path`.
      const fail = () => {
        const text = M.UTF8ToString(err).split(file).join(path);
        throw formatError(path, text);
      };
      await topUp(1);
      if (M._chromaformer_reader_open(cString(file, heap), BigInt(bins),
        BigInt(layout.marks.length), options, out, err, ERR_BYTES) !== 0) fail();
      reader = M.HEAPU32[out >> 2];
      for (let wanted = 0; ; ) {
        wanted += batchSize * bins;
        await topUp(wanted + 2);
        if (M._chromaformer_reader_next(reader, BigInt(batchSize), batch, err, ERR_BYTES) !== 0) {
          fail();
        }
        const w = batch >> 2;
        const n = M.HEAP32[w];
        if (n === 0) break;
        const per = M.HEAP32[w + 2] * M.HEAP32[w + 4];
        const c = M.HEAPU32[w + 6] >> 2;
        const l = M.HEAPU32[w + 7];
        const idp = M.HEAPU32[w + 8] >> 2;
        const ids = new Array(n);
        for (let g = 0; g < n; g++) ids[g] = M.UTF8ToString(M.HEAPU32[idp + g]);
        yield {
          ids,
          labels: M.HEAPU8.slice(l, l + n),
          counts: M.HEAPF32.slice(c, c + n * per),
          n,
        };
      }
    } finally {
      if (reader) M._chromaformer_reader_close(reader);
      for (const p of heap) M._free(p);
      M.FS.unlink(file);
      if (iterator.return) await iterator.return();
    }
  }

  return { version: M.UTF8ToString(M._chromaformer_version()), readBatches };
}
