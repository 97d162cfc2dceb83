#!/usr/bin/env python3
"""Control-flow check of one arm64 MMIO accessor's disassembly (objdump -d --no-show-raw-insn of
one function on stdin): every plain device access (`ldr*/str* reg, [xN]` of the given mnemonics)
is reached from the function entry only through a `dmb osh`, and every path leaving it meets a
`dmb osh` before the function returns or calls out. Exit 1 with the reason otherwise."""
import re
import sys

ops = sys.argv[1].split()
insns = []  # (addr, mnemonic, operands)
for line in sys.stdin:
    m = re.match(r'\s*([0-9a-f]+):\s+(\S+)\s*(.*)$', line)
    if m:
        insns.append((int(m.group(1), 16), m.group(2), m.group(3).split('//')[0].strip()))
if not insns:
    sys.exit('no instructions')
index = {a: i for i, (a, _, _) in enumerate(insns)}
barrier = lambda i: insns[i][1] == 'dmb' and insns[i][2] == 'osh'
access_re = re.compile(r'^[wx]\d+, \[x\d+\]$')
accesses = [i for i, (_, mn, arg) in enumerate(insns) if mn in ops and access_re.match(arg)]
if not accesses:
    sys.exit('no plain device access found')


def successors(i, calls_return):
    _, mn, arg = insns[i]
    noreturn = mn == 'bl' and re.search(r'<[^>]*(Throw|__cxa_throw|_Unwind_Resume|abort|terminate|__stack_chk_fail)', arg)
    if mn in ('ret', 'br') or noreturn or (mn in ('bl', 'blr') and not calls_return):
        return None  # leaves the function (or calls out): no successor we follow
    out = []
    target = re.match(r'([0-9a-f]+) <', arg.split(',')[-1].strip())
    if mn == 'b' or mn.startswith('b.') or mn in ('cbz', 'cbnz', 'tbz', 'tbnz'):
        t = index.get(int(target.group(1), 16)) if target else None
        if t is None:
            return None
        out.append(t)
        if mn == 'b':
            return out
    if i + 1 < len(insns):
        out.append(i + 1)
    return out


def walk(start, calls_return):
    """Instructions reachable from start without crossing a barrier, and whether a path leaves."""
    seen, todo, leaves = set(), [start], False
    while todo:
        i = todo.pop()
        if i in seen:
            continue
        seen.add(i)
        if i != start and barrier(i):
            continue
        nxt = successors(i, calls_return)
        if nxt is None:
            leaves = True
            continue
        todo.extend(nxt)
    return seen, leaves


reach, _ = walk(0, True)   # calls before the access (argument checks) return
early = [insns[i] for i in accesses if i in reach]
if early:
    sys.exit(f'access {early[0][1]} {early[0][2]} at {early[0][0]:x} is reachable from the entry without a dmb osh')
for i in accesses:
    seen, leaves = walk(i, False)  # calling out before the trailing barrier counts as leaving
    if leaves:
        sys.exit(f'after {insns[i][1]} {insns[i][2]} at {insns[i][0]:x} a path leaves the function without a dmb osh')
print(f'{len(accesses)} accesses, each after and before a dmb osh on every path')
