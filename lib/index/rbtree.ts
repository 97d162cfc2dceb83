/**
 * A red-black tree of non-overlapping address ranges [key, key + span), stored as
 * struct-of-arrays in typed arrays (no per-node objects). Node ids are chosen by the
 * caller (a pool uses its page numbers), so the tree adds no id mapping on the hot path.
 *
 * Lookup of an address follows the seed's pool_find_page(): `addr < key` → left,
 * `addr - key >= span` → right, else found. Insert/erase are the classic algorithms
 * (Cormen et al., ch. 13) with -1 as the nil link.
 */
import { DmaPoolError, hex } from '../errors';

const RED = 0;
const BLACK = 1;
const NIL = -1;

export class RbTree {
  key: Float64Array;
  span: Float64Array;
  left: Int32Array;
  right: Int32Array;
  parent: Int32Array;
  color: Uint8Array;
  root = NIL;
  size = 0;
  /**
   * The node with the highest range, or NIL. A pool's pages mostly arrive in ascending DMA order
   * (providers carve slabs upwards), so insert() tries "after the highest" first: one comparison
   * instead of a descent (the rebalancing is the same either way).
   */
  private highest = NIL;
  /** Nodes visited by lookups and inserts (the cost measure the benchmark reports). */
  visits = 0;

  constructor(capacity = 64) {
    this.key = new Float64Array(capacity);
    this.span = new Float64Array(capacity);
    this.left = new Int32Array(capacity);
    this.right = new Int32Array(capacity);
    this.parent = new Int32Array(capacity);
    this.color = new Uint8Array(capacity);
  }

  get capacity(): number {
    return this.key.length;
  }

  /**
   * Grows the node arrays so ids < n are valid. All-or-nothing: when an array cannot be
   * allocated it throws DmaPoolError ENOMEM and the tree keeps its old arrays (a half-grown set
   * would let writes past a shorter array vanish silently).
   */
  reserve(n: number): void {
    if (n <= this.key.length) return;
    let cap = this.key.length;
    while (cap < n) cap *= 2;
    let key: Float64Array, span: Float64Array, left: Int32Array, right: Int32Array, parent: Int32Array, color: Uint8Array;
    try {
      key = new Float64Array(cap); span = new Float64Array(cap);
      left = new Int32Array(cap); right = new Int32Array(cap); parent = new Int32Array(cap);
      color = new Uint8Array(cap);
    } catch (e) {
      if (e instanceof RangeError)
        throw new DmaPoolError('ENOMEM', `red-black tree growth to ${cap} nodes: ${e.message}`, { cause: e });
      throw e;
    }
    key.set(this.key); span.set(this.span);
    left.set(this.left); right.set(this.right); parent.set(this.parent);
    color.set(this.color);
    this.key = key; this.span = span;
    this.left = left; this.right = right; this.parent = parent;
    this.color = color;
  }

  /** The node whose range contains `addr`, or -1. */
  find(addr: number): number {
    const key = this.key, span = this.span, left = this.left, right = this.right;
    let n = this.root;
    let visits = 0;
    while (n !== NIL) {
      visits++;
      const k = key[n];
      if (addr < k) n = left[n];
      else if (addr - k >= span[n]) n = right[n];
      else break;
    }
    this.visits += visits;
    return n;
  }

  /**
   * Inserts node `id` for [key, key + span). Throws EINVAL on overlap with an existing range,
   * ENOMEM when the arrays cannot grow; either way before changing the tree.
   */
  insert(id: number, key: number, span: number): void {
    this.reserve(id + 1);
    const keys = this.key, spans = this.span, left = this.left, right = this.right;
    let p = NIL;
    let n = this.root;
    let goLeft = false;
    let visits = 0;
    const h = this.highest;
    if (h !== NIL && key >= keys[h] + spans[h]) {
      // above every range: the new node is the highest's right child (it has none)
      visits = 1;
      p = h;
      n = NIL;
    }
    while (n !== NIL) {
      visits++;
      p = n;
      const k = keys[n];
      if (key + span <= k) { n = left[n]; goLeft = true; }
      else if (key >= k + spans[n]) { n = right[n]; goLeft = false; }
      else {
        this.visits += visits;
        throw new DmaPoolError('EINVAL',
          `DMA address overlap: [${hex(key)}, ${hex(key + span)}) overlaps [${hex(k)}, ${hex(k + spans[n])})`);
      }
    }
    this.visits += visits;
    keys[id] = key;
    spans[id] = span;
    left[id] = NIL;
    right[id] = NIL;
    this.parent[id] = p;
    this.color[id] = RED;
    if (p === NIL) this.root = id;
    else if (goLeft) left[p] = id;
    else right[p] = id;
    if (h === NIL || key > keys[h]) this.highest = id;
    this.size++;
    this.insertFixup(id);
  }

  private rotateLeft(x: number): void {
    const { left, right, parent } = this;
    const y = right[x];
    right[x] = left[y];
    if (left[y] !== NIL) parent[left[y]] = x;
    parent[y] = parent[x];
    if (parent[x] === NIL) this.root = y;
    else if (x === left[parent[x]]) left[parent[x]] = y;
    else right[parent[x]] = y;
    left[y] = x;
    parent[x] = y;
  }

  private rotateRight(x: number): void {
    const { left, right, parent } = this;
    const y = left[x];
    left[x] = right[y];
    if (right[y] !== NIL) parent[right[y]] = x;
    parent[y] = parent[x];
    if (parent[x] === NIL) this.root = y;
    else if (x === right[parent[x]]) right[parent[x]] = y;
    else left[parent[x]] = y;
    right[y] = x;
    parent[x] = y;
  }

  private insertFixup(z: number): void {
    const { left, right, parent, color } = this;
    while (parent[z] !== NIL && color[parent[z]] === RED) {
      const p = parent[z];
      const g = parent[p]; // a red node is never the root, so g exists
      if (p === left[g]) {
        const u = right[g];
        if (u !== NIL && color[u] === RED) {
          color[p] = BLACK; color[u] = BLACK; color[g] = RED; z = g;
        } else {
          if (z === right[p]) { z = p; this.rotateLeft(z); }
          color[parent[z]] = BLACK; color[parent[parent[z]]] = RED;
          this.rotateRight(parent[parent[z]]);
        }
      } else {
        const u = left[g];
        if (u !== NIL && color[u] === RED) {
          color[p] = BLACK; color[u] = BLACK; color[g] = RED; z = g;
        } else {
          if (z === left[p]) { z = p; this.rotateRight(z); }
          color[parent[z]] = BLACK; color[parent[parent[z]]] = RED;
          this.rotateLeft(parent[parent[z]]);
        }
      }
    }
    color[this.root] = BLACK;
  }

  private transplant(u: number, v: number): void {
    const pu = this.parent[u];
    if (pu === NIL) this.root = v;
    else if (u === this.left[pu]) this.left[pu] = v;
    else this.right[pu] = v;
    if (v !== NIL) this.parent[v] = pu;
  }

  private minimum(n: number): number {
    while (this.left[n] !== NIL) n = this.left[n];
    return n;
  }

  /** True when `id` is currently a node of this tree. */
  has(id: number): boolean {
    if (id < 0 || id >= this.key.length || this.root === NIL) return false;
    let n = id;
    while (this.parent[n] !== NIL) {
      const p = this.parent[n];
      if (this.left[p] !== n && this.right[p] !== n) return false;
      n = p;
    }
    return n === this.root && this.find(this.key[id]) === id;
  }

  /** Removes node `id` (which must be in the tree). */
  erase(id: number): void {
    const { left, right, parent, color } = this;
    let y = id;
    let yColor = color[y];
    let x: number;
    let xParent: number;
    if (left[id] === NIL) {
      x = right[id]; xParent = parent[id];
      this.transplant(id, x);
    } else if (right[id] === NIL) {
      x = left[id]; xParent = parent[id];
      this.transplant(id, x);
    } else {
      y = this.minimum(right[id]);
      yColor = color[y];
      x = right[y];
      if (parent[y] === id) {
        xParent = y;
      } else {
        xParent = parent[y];
        this.transplant(y, x);
        right[y] = right[id];
        parent[right[y]] = y;
      }
      this.transplant(id, y);
      left[y] = left[id];
      parent[left[y]] = y;
      color[y] = color[id];
    }
    this.size--;
    left[id] = right[id] = parent[id] = NIL;
    if (yColor === BLACK) this.eraseFixup(x, xParent);
    if (id === this.highest) this.highest = this.root === NIL ? NIL : this.maximum(this.root);
  }

  private maximum(n: number): number {
    while (this.right[n] !== NIL) n = this.right[n];
    return n;
  }

  private eraseFixup(x: number, xParent: number): void {
    const { left, right, parent, color } = this;
    const isBlack = (n: number) => n === NIL || color[n] === BLACK;
    while (x !== this.root && isBlack(x)) {
      const p = x === NIL ? xParent : parent[x];
      if (x === left[p]) {
        let w = right[p];
        if (color[w] === RED) {
          color[w] = BLACK; color[p] = RED; this.rotateLeft(p); w = right[p];
        }
        if (isBlack(left[w]) && isBlack(right[w])) {
          color[w] = RED; x = p; xParent = parent[p];
        } else {
          if (isBlack(right[w])) {
            color[left[w]] = BLACK; color[w] = RED; this.rotateRight(w); w = right[p];
          }
          color[w] = color[p]; color[p] = BLACK;
          if (right[w] !== NIL) color[right[w]] = BLACK;
          this.rotateLeft(p);
          x = this.root; xParent = NIL;
        }
      } else {
        let w = left[p];
        if (color[w] === RED) {
          color[w] = BLACK; color[p] = RED; this.rotateRight(p); w = left[p];
        }
        if (isBlack(right[w]) && isBlack(left[w])) {
          color[w] = RED; x = p; xParent = parent[p];
        } else {
          if (isBlack(left[w])) {
            color[right[w]] = BLACK; color[w] = RED; this.rotateLeft(w); w = left[p];
          }
          color[w] = color[p]; color[p] = BLACK;
          if (left[w] !== NIL) color[left[w]] = BLACK;
          this.rotateRight(p);
          x = this.root; xParent = NIL;
        }
      }
    }
    if (x !== NIL) color[x] = BLACK;
  }

  /** Height of the tree in nodes (0 when empty). */
  height(): number {
    const h = (n: number): number => (n === NIL ? 0 : 1 + Math.max(h(this.left[n]), h(this.right[n])));
    return h(this.root);
  }

  /** Node ids in key order. */
  inorder(): number[] {
    const out: number[] = [];
    const stack: number[] = [];
    let n = this.root;
    while (n !== NIL || stack.length) {
      while (n !== NIL) { stack.push(n); n = this.left[n]; }
      n = stack.pop()!;
      out.push(n);
      n = this.right[n];
    }
    return out;
  }

  /**
   * Verifies every red-black and search-tree invariant; throws an Error naming the first
   * violation: root black, parent links, ranges ordered and disjoint, no red node with a red
   * child, the same number of black nodes on every root-to-nil path, and the node count.
   */
  check(): void {
    const { left, right, parent, color, key, span } = this;
    if (this.root === NIL) {
      if (this.size !== 0) throw new Error(`rbtree: empty root but size ${this.size}`);
      if (this.highest !== NIL) throw new Error(`rbtree: empty but highest is node ${this.highest}`);
      return;
    }
    if (parent[this.root] !== NIL) throw new Error('rbtree: root has a parent');
    if (color[this.root] !== BLACK) throw new Error('rbtree: root is red');
    let count = 0;
    // Returns the black height; `lo`/`hi` bound the keys allowed in this subtree.
    const walk = (n: number, lo: number, hi: number): number => {
      if (n === NIL) return 1;
      count++;
      if (count > this.size) throw new Error('rbtree: more nodes reachable than size (cycle?)');
      const k = key[n];
      if (k < lo || k + span[n] > hi) throw new Error(`rbtree: node ${n} at ${hex(k)} out of order`);
      for (const c of [left[n], right[n]]) {
        if (c === NIL) continue;
        if (parent[c] !== n) throw new Error(`rbtree: node ${c} has parent ${parent[c]}, expected ${n}`);
        if (color[n] === RED && color[c] === RED) throw new Error(`rbtree: red node ${n} has red child ${c}`);
      }
      const bl = walk(left[n], lo, k);
      const br = walk(right[n], k + span[n], hi);
      if (bl !== br) throw new Error(`rbtree: black heights differ below node ${n} (${bl} vs ${br})`);
      return bl + (color[n] === BLACK ? 1 : 0);
    };
    walk(this.root, -Infinity, Infinity);
    if (count !== this.size) throw new Error(`rbtree: ${count} nodes reachable, size ${this.size}`);
    if (this.highest !== this.maximum(this.root)) throw new Error(`rbtree: highest is node ${this.highest}, not the maximum`);
  }

  /** Bytes of metadata per node. */
  static readonly bytesPerNode = 8 + 8 + 4 + 4 + 4 + 1;
}
