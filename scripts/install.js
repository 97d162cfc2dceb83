#!/usr/bin/env node
'use strict';
// npm install hook for the native addon. `bindings` stays the loader (lib/native.ts looks in
// build/Release/dmapool.node first); this script only decides what ends up there:
//   1. a prebuilt addon for this platform (prebuilds/linux-<arch>/dmapool.node, glibc, N-API 8)
//      that loads in a child process → copied to build/Release/dmapool.node;
//   2. otherwise node-gyp rebuild from native/ — after checking the toolchain it needs, so a
//      machine without one gets one line saying what is missing (and exit 1), not a gyp stack dump.
// A git checkout (development), `npm install --build-from-source` and DMAPOOL_BUILD_FROM_SOURCE=1
// always build from source.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const tag = `${process.platform}-${process.arch}`;
const target = path.join(root, 'build', 'Release', 'dmapool.node');
const say = (msg) => process.stderr.write(`dmapool: ${msg}\n`);

/** null when `file` loads as a Node addon (in a child: a bad binary must not take us down), else why not. */
function loadError(file) {
  const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(file)})`], { encoding: 'utf8' });
  if (r.status === 0) return null;
  const line = `${r.stderr || ''}`.split('\n').find((l) => /Error|error:/.test(l)) || `exit ${r.status ?? r.signal}`;
  return line.trim().slice(0, 200);
}

function glibc() {
  try { return process.report.getReport().header.glibcVersionRuntime || null; } catch { return null; }
}

function fromSourceRequested() {
  if (process.env.DMAPOOL_BUILD_FROM_SOURCE === '1') return 'DMAPOOL_BUILD_FROM_SOURCE=1';
  if (`${process.env.npm_config_build_from_source}` === 'true') return '--build-from-source';
  if (fs.existsSync(path.join(root, '.git'))) return 'a git checkout';
  return null;
}

function tryPrebuild() {
  const file = path.join(root, 'prebuilds', tag, 'dmapool.node');
  if (!fs.existsSync(file)) return `no prebuilt addon for ${tag}`;
  if (!glibc()) return `the prebuilt ${tag} addon needs glibc (this Node runs on another C library)`;
  const err = loadError(file);
  if (err) return `the prebuilt ${tag} addon does not load here (${err})`;
  fs.rmSync(path.join(root, 'build'), { recursive: true, force: true });
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.copyFileSync(file, target);
  return null;
}

function onPath(cmd) {
  if (cmd.includes('/')) return fs.existsSync(cmd);
  return (process.env.PATH || '').split(path.delimiter).some((d) => {
    try { fs.accessSync(path.join(d || '.', cmd), fs.constants.X_OK); return true; } catch { return false; }
  });
}

/** What node-gyp needs that this machine lacks (python 3, make, a C++ compiler). */
function missingToolchain() {
  const missing = [];
  const python = process.env.npm_config_python || process.env.PYTHON;
  if (!(python ? onPath(python) : onPath('python3') || onPath('python'))) missing.push('python3');
  if (!onPath('make')) missing.push('make');
  const cxx = (process.env.CXX || '').split(' ')[0];
  if (!(cxx ? onPath(cxx) : onPath('g++') || onPath('c++') || onPath('clang++'))) missing.push('g++');
  return missing;
}

/** The project's own node-gyp (a dev checkout), else the one npm bundles, else one on PATH. */
function nodeGyp() {
  try { return [process.execPath, require.resolve('node-gyp/bin/node-gyp.js', { paths: [root] })]; } catch { /* not installed */ }
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && fs.existsSync(fromNpm)) return [process.execPath, fromNpm];
  return onPath('node-gyp') ? ['node-gyp'] : null;
}

function main() {
  const forced = fromSourceRequested();
  let why = forced ? `building from source (${forced})` : tryPrebuild();
  if (!why) { say(`using the prebuilt ${tag} addon (N-API 8)`); return 0; }
  if (!forced) why += '; building from source';
  const missing = missingToolchain();
  if (missing.length) {
    say(`${why}, but ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} missing: install python3, make and g++ ` +
      '(Debian/Ubuntu: apt-get install python3 make g++) and run npm install again');
    return 1;
  }
  const gyp = nodeGyp();
  if (!gyp) { say(`${why}, but node-gyp was not found: run the install through npm (it bundles node-gyp)`); return 1; }
  say(why);
  const r = spawnSync(gyp[0], [...gyp.slice(1), 'rebuild'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    say(`node-gyp rebuild failed (${r.error ? r.error.message : `exit ${r.status ?? r.signal}`}); its output is above`);
    return 1;
  }
  return 0;
}

process.exitCode = main();
