#!/usr/bin/env python3
"""Multiply-adds per instruction of each aarch64 kernel's inner loop
(docs/arm.md): disassembles the kernel objects of an aarch64 build with
aarch64-linux-gnu-objdump, finds in each the innermost loop (a backward
branch with no branch inside) holding the most multiply-add instructions,
and prints its length, its multiply-add instructions and loads, and the
multiply-adds per instruction (each instruction's multiply-adds: fmla 4,
smlal 4, sdot/usdot 16, usmmla 32, bfdot 8, bfmmla 16; 128-bit forms).
usage: tools/arm/inner_loops.py [BUILD_DIR]   (default build-aarch64)"""
import os
import re
import subprocess
import sys


def loops(obj, macre):
    dis=subprocess.run(['aarch64-linux-gnu-objdump','-d',obj],capture_output=True,text=True).stdout
    lines=[l for l in dis.splitlines() if re.match(r'\s+[0-9a-f]+:\t',l)]
    addr=[int(l.split(':')[0],16) for l in lines]
    ins=[l.split('\t')[2].strip() if len(l.split('\t'))>2 else '' for l in lines]
    best=None
    for i,l in enumerate(lines):
        m=re.search(r'\tb\.\w+\s+([0-9a-f]+)|\tb\s+([0-9a-f]+) |\tcbn?z\s+\w+, ([0-9a-f]+)',l)
        if not m: continue
        tgt=int([g for g in m.groups() if g][0],16)
        if tgt>=addr[i] or tgt not in addr: continue
        j=addr.index(tgt); body=ins[j:i+1]
        if any(re.match(r'b[\s.]|cbn?z',b) for b in body[:-1]): continue  # innermost, no inner branch
        mac=sum(bool(re.match(macre,b)) for b in body)
        if mac and (best is None or mac>best[1]): best=(len(body),mac,sum(b.startswith('ld') for b in body),hex(tgt))
    return best
B=sys.argv[1] if len(sys.argv) > 1 else 'build-aarch64'
O=os.path.join(B, 'CMakeFiles/towerrt_objects.dir/kernels/arm/')
for f,macre,macs_per in [('maxsim-f32-neon.c.o',r'fmla',4),('maxsim-bf16-neon.c.o',r'fmla',4),('maxsim-u8s8-neon.c.o',r'smlal',4),
  ('maxsim-u8s8-neon-dotprod.c.o',r'sdot',16),('maxsim-u8s8-neon-i8mm.c.o',r'usmmla',32),('maxsim-bf16-neon-bf16.c.o',r'bfmmla',16),
  ('dense-f32-neon.c.o',r'fmla',4),('dense-bf16-neon.c.o',r'fmla',4),('dense-bf16-neon-bf16.c.o',r'bfdot',8),
  ('dense-u8s8-neon.c.o',r'smlal',4),('dense-u8s8-neon-dotprod.c.o',r'sdot',16),('dense-u8s8-neon-i8mm.c.o',r'usdot',16),('dense-u8s8-neon-i8mm.c.o',r'usmmla',32)]:
    b=loops(O+f,macre)
    n,mac,ld,at=b
    print(f"{f:32s} loop@{at} {n:3d} instr, {mac:3d} MAC instr ({macre}), {ld:2d} loads -> {mac*macs_per/n:.2f} madds/instr")
