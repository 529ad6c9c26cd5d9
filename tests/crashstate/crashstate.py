#!/usr/bin/env python3
"""crashstate — every state a crash may leave, and evstream's start-up on each.

ALICE (OSDI '14) and CrashMonkey (OSDI '18) in small: record the file-system
calls of one operation sequence with strace (evgen publishing a file; evstream's
batch: claims, checkpoint and journal writes, metrics file, archive, delete and
quarantine moves), then build every state a crash may leave on disk and run
`evstream --once` on each, against the database as it was at that point.

The rules (POSIX, as ALICE's weakest file system; rename taken as atomic, as
every journaling file system makes it):
  * a crash may come after any call (crash point k: the first k calls happened);
  * a write or truncate of a file is on disk for sure only once an fsync or
    fdatasync of that file followed it; before, it may be missing, whole, or torn
    (its first half only);
  * a create, link, unlink, rename or mkdir is on disk for sure only once an
    fsync of its directory (either directory, for a rename) followed it; before,
    it may or may not have happened, in any combination with the others
    (that covers every order in which they could have reached the disk);
  * the database has the batch once the COMMIT was sent and answered; in the
    window between, it may or may not.
Combinations per crash point are enumerated whole up to --limit; above it, a
fixed set is taken (none, all, each program-order prefix, each call alone left
out, each call alone kept, then seeded random ones up to the limit) and the
point is counted as sampled.  States equal in every byte (and database side)
are run once.

After evstream's start-up on a state, the checks: exit status 0 (or a message
saying why not); every published spool file's valid event_ids in `events`
(a file evgen had not finished publishing: all of its rows or none), nothing
twice, every file in exactly one batch, the bad file in quarantine/.

Usage (tests/system/crash_states_recovered.sh runs it with a cluster up):
  crashstate.py --work DIR --bin DIR --psql PATH --conninfo STR [--limit N] [--seed N]
"""
import argparse
import hashlib
import itertools
import os
import random
import re
import shutil
import subprocess
import sys
import zlib

# tests/lib/reliability.sh's _REL_VALID_ROW: valid as evgen writes it (an independent check)
VALID_ROW = re.compile(rb'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12},[1-9][0-9]*,'
                       rb'(view|purchase),[1-9][0-9]*,[0-9]+\.[0-9]{2},[0-9]{4}-(0[1-9]|1[0-2])-'
                       rb'[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9]\.[0-9]{6}$')

# --- parsing strace -f -y -xx output -------------------------------------------------

HEX = r'(?:\\x[0-9a-f]{2})*'
TOKEN = re.compile(r'"(' + HEX + r')"(\.\.\.)?|(-?\d+|AT_FDCWD)<(' + HEX + r')>|([^,\s(){}\[\]]+)')
LINE = re.compile(r'^(\d+) +([a-z0-9_]+)\((.*)\) += (-?\d+)(?:<(' + HEX + r')>)?')


def unhex(s):
    return bytes.fromhex(s.replace('\\x', ''))


def args_of(text):
    """The arguments as a list: bytes for strings, (fd, path) for fds, str otherwise."""
    out = []
    for m in TOKEN.finditer(text):
        if m.group(1) is not None:
            if m.group(2):
                raise ValueError('strace truncated a string; raise -s')
            out.append(unhex(m.group(1)))
        elif m.group(3) is not None:
            out.append((m.group(3), unhex(m.group(4)).decode('utf-8', 'surrogateescape')))
        else:
            out.append(m.group(5))
    return out


class Recorder:
    """Turns the calls into ops on inodes and directories under the roots."""

    def __init__(self, roots, initial):
        self.roots = [os.path.abspath(r) for r in roots]
        self.names = {}      # path -> inode number (ours), the process's view
        self.dirs = set()
        self.size = {}
        self.fds = {}        # fd -> ('f', ino, append) | ('d', path)
        self.offs = {}
        self.ops = []
        self.next_ino = 1
        for path, kind in initial:
            if kind == 'd':
                self.dirs.add(path)
            else:
                self.names[path] = self.new_ino()
                self.size[self.names[path]] = os.path.getsize(path)

    def new_ino(self):
        self.next_ino += 1
        return self.next_ino - 1

    def mine(self, path):
        return any(path == r or path.startswith(r + '/') for r in self.roots)

    @staticmethod
    def at(dirarg, name):
        name = name.decode('utf-8', 'surrogateescape')
        if name.startswith('/'):
            return os.path.normpath(name)
        return os.path.normpath(os.path.join(dirarg[1], name))

    def op(self, *o):
        self.ops.append(o)

    def feed(self, line):
        m = LINE.match(line)
        if not m:
            return
        call, rc = m.group(2), int(m.group(4))
        if rc < 0:
            return
        try:
            a = args_of(m.group(3))
        except ValueError:
            if call in ('write', 'pwrite64', 'sendto'):
                raise
            return
        h = getattr(self, 'c_' + call, None)
        if h:
            h(a, rc, m)

    # opening and closing
    def c_openat(self, a, rc, m):
        self.open(self.at(a[0], a[1]), a[2], rc)

    def c_open(self, a, rc, m):
        self.open(self.at(('AT_FDCWD', os.getcwd()), a[0]), a[1], rc)

    def open(self, path, flags, fd):
        self.fds.pop(fd, None)
        if not self.mine(path):
            return
        if path in self.dirs or 'O_DIRECTORY' in flags:
            self.fds[fd] = ('d', path)
            return
        ino = self.names.get(path)
        if ino is None:
            if 'O_CREAT' not in flags:
                return
            ino = self.new_ino()
            self.names[path] = ino
            self.size[ino] = 0
            self.op('link', os.path.dirname(path), os.path.basename(path), ino)
        if 'O_TRUNC' in flags and self.size.get(ino):
            self.size[ino] = 0
            self.op('trunc', ino, 0)
        self.fds[fd] = ('f', ino, 'O_APPEND' in flags)
        self.offs[fd] = 0

    def c_close(self, a, rc, m):
        fd = int(a[0][0]) if isinstance(a[0], tuple) else int(a[0])
        self.fds.pop(fd, None)

    def fd_of(self, a0):
        return self.fds.get(int(a0[0])) if isinstance(a0, tuple) and a0[0] != 'AT_FDCWD' else None

    # data
    def c_write(self, a, rc, m):
        f = self.fd_of(a[0])
        if not f or f[0] != 'f':
            return
        fd = int(a[0][0])
        off = self.size[f[1]] if f[2] else self.offs[fd]
        self.data(f[1], off, a[1][:rc])
        self.offs[fd] = off + rc

    def c_pwrite64(self, a, rc, m):
        f = self.fd_of(a[0])
        if f and f[0] == 'f':
            self.data(f[1], int(a[3]), a[1][:rc])

    def data(self, ino, off, buf):
        self.size[ino] = max(self.size[ino], off + len(buf))
        self.op('write', ino, off, buf)

    def c_ftruncate(self, a, rc, m):
        f = self.fd_of(a[0])
        if f and f[0] == 'f':
            self.size[f[1]] = int(a[1])
            self.op('trunc', f[1], int(a[1]))

    def c_lseek(self, a, rc, m):
        f = self.fd_of(a[0])
        if f and f[0] == 'f':
            self.offs[int(a[0][0])] = rc

    def c_fsync(self, a, rc, m):
        f = self.fd_of(a[0])
        if f:
            self.op('fsync', f[1]) if f[0] == 'f' else self.op('dsync', f[1])

    c_fdatasync = c_fsync

    # directories
    def c_mkdir(self, a, rc, m):
        self.mkdir(self.at(('AT_FDCWD', os.getcwd()), a[0]))

    def c_mkdirat(self, a, rc, m):
        self.mkdir(self.at(a[0], a[1]))

    def mkdir(self, path):
        if self.mine(path):
            self.dirs.add(path)
            self.op('mkdir', os.path.dirname(path), os.path.basename(path))

    def c_linkat(self, a, rc, m):
        self.link(self.at(a[0], a[1]), self.at(a[2], a[3]))

    def c_link(self, a, rc, m):
        cwd = ('AT_FDCWD', os.getcwd())
        self.link(self.at(cwd, a[0]), self.at(cwd, a[1]))

    def link(self, src, dst):
        if self.mine(dst) and src in self.names:
            self.names[dst] = self.names[src]
            self.op('link', os.path.dirname(dst), os.path.basename(dst), self.names[src])

    def c_unlinkat(self, a, rc, m):
        self.unlink(self.at(a[0], a[1]))

    def c_unlink(self, a, rc, m):
        self.unlink(self.at(('AT_FDCWD', os.getcwd()), a[0]))

    def unlink(self, path):
        ino = self.names.pop(path, None)
        if ino is not None:
            self.op('unlink', os.path.dirname(path), os.path.basename(path), ino)

    def c_renameat(self, a, rc, m):
        self.rename(self.at(a[0], a[1]), self.at(a[2], a[3]))

    c_renameat2 = c_renameat

    def c_rename(self, a, rc, m):
        cwd = ('AT_FDCWD', os.getcwd())
        self.rename(self.at(cwd, a[0]), self.at(cwd, a[1]))

    def rename(self, src, dst):
        ino = self.names.pop(src, None)
        if ino is None or not self.mine(dst):
            return
        self.names[dst] = ino
        self.op('rename', os.path.dirname(src), os.path.basename(src),
                os.path.dirname(dst), os.path.basename(dst), ino)

    # the database's commit: sent, then answered
    SQL = re.compile(rb'(?:INSERT INTO|UPDATE|DELETE FROM|COPY|LOCK TABLE)\s+[^\s(]+')

    def c_sendto(self, a, rc, m):
        if not isinstance(a[1], bytes):
            return
        self.sql = getattr(self, 'sql', []) + [x.decode('utf-8', 'replace')
                                              for x in self.SQL.findall(a[1])]
        if b'COMMIT' in a[1]:
            self.op('commit_sent', ', '.join(dict.fromkeys(self.sql)) or 'no writes')
            self.sql = []

    def c_recvfrom(self, a, rc, m):
        if isinstance(a[1], bytes) and b'C\x00\x00\x00\x0bCOMMIT\x00' in a[1]:
            self.op('commit_done')


def record(cmd, roots, trace, env=None):
    initial = []
    for r in roots:
        for d, subdirs, files in os.walk(r):
            initial.append((os.path.abspath(d), 'd'))
            initial += [(os.path.abspath(os.path.join(d, f)), 'f') for f in files]
    snap = {p: open(p, 'rb').read() for p, k in initial if k == 'f'}
    ident = {p: os.stat(p) for p, k in initial if k == 'f'}
    rec = Recorder(roots, initial)
    # evstream is run from inside the work directory; its cwd is the strace's
    subprocess.run(['strace', '-f', '-qq', '-y', '-xx', '-s', '4194304', '-o', trace,
                    '-e', 'trace=%file,%desc,sendto,recvfrom'] + cmd, env=env, check=False,
                   stdout=subprocess.DEVNULL, stderr=open(trace + '.stderr', 'wb'))
    with open(trace, 'r', errors='surrogateescape') as f:
        for line in f:
            rec.feed(line)
    inode0 = {}
    for p, k in initial:
        if k == 'f':
            inode0[rec_initial_ino(rec, p, initial)] = (p, snap[p], ident[p])
    return rec, initial, inode0


def rec_initial_ino(rec, path, initial):
    # inode numbers 1..n were handed out to the initial files in order
    files = [p for p, k in initial if k == 'f']
    return 1 + files.index(path)


# --- building the states --------------------------------------------------------------

SYNC = ('fsync', 'dsync')
DIROPS = ('link', 'unlink', 'rename', 'mkdir')


def forced_and_free(ops, k):
    """The ops among the first k that are on disk for sure, and the others."""
    forced = set()
    for j in range(k):
        o = ops[j]
        if o[0] == 'fsync':
            forced |= {i for i in range(j) if ops[i][0] in ('write', 'trunc') and ops[i][1] == o[1]}
        elif o[0] == 'dsync':
            forced |= {i for i in range(j) if ops[i][0] in DIROPS and o[1] in op_dirs(ops[i])}
    free = [i for i in range(k) if ops[i][0] in ('write', 'trunc') + DIROPS and i not in forced]
    return forced, free


def op_dirs(o):
    if o[0] == 'rename':
        return (o[1], o[3])
    return (o[1],)


def choices(ops, i):
    # an un-synced write: missing, whole, or torn (first half); anything else: or not
    return (0, 1, 2) if ops[i][0] == 'write' and len(ops[i][3]) > 1 else (0, 1)


def combos(ops, free, limit, rng):
    """(persisted variant per free op) tuples, and whether that is all of them."""
    space = [choices(ops, i) for i in free]
    total = 1
    for s in space:
        total *= len(s)
    if total <= limit:
        return list(itertools.product(*space)), True
    n = len(free)
    picked = {tuple([0] * n), tuple([1] * n)}
    for p in range(n + 1):
        picked.add(tuple([1] * p + [0] * (n - p)))
    for p in range(n):
        picked.add(tuple(0 if q == p else 1 for q in range(n)))
        picked.add(tuple(1 if q == p else 0 for q in range(n)))
        if len(space[p]) == 3:
            picked.add(tuple(2 if q == p else 1 for q in range(n)))
    while len(picked) < limit:
        picked.add(tuple(rng.choice(s) for s in space))
    return sorted(picked), False


def replay(initial, inode0, ops, k, keep):
    """The on-disk state: {path: (ino, bytes)} and directories."""
    dirs = {p for p, t in initial if t == 'd'}
    names = {p: ino for ino, (p, _, _) in inode0.items()}
    data = {ino: bytearray(b) for ino, (_, b, _) in inode0.items()}
    for i in range(k):
        o = ops[i]
        v = keep.get(i)
        if v is None or v == 0:
            continue
        kind = o[0]
        if kind == 'write':
            buf = o[3] if v == 1 else o[3][:len(o[3]) // 2]
            d = data.setdefault(o[1], bytearray())
            if len(d) < o[2]:
                d.extend(b'\0' * (o[2] - len(d)))
            d[o[2]:o[2] + len(buf)] = buf
        elif kind == 'trunc':
            d = data.setdefault(o[1], bytearray())
            del d[o[2]:]
            d.extend(b'\0' * (o[2] - len(d)))
        elif kind == 'link':
            names[os.path.join(o[1], o[2])] = o[3]
        elif kind == 'unlink':
            p = os.path.join(o[1], o[2])
            if names.get(p) == o[3]:
                del names[p]
        elif kind == 'rename':
            src, dst = os.path.join(o[1], o[2]), os.path.join(o[3], o[4])
            if names.get(src) == o[5]:
                del names[src]
            names[dst] = o[5]
        elif kind == 'mkdir':
            dirs.add(os.path.join(o[1], o[2]))
    # a name in a directory that is not on disk is not there either
    files = {p: (ino, bytes(data.get(ino, b''))) for p, ino in names.items()
             if os.path.dirname(p) in dirs}
    return files, dirs


def db_side(ops, k):
    """('pre',), ('post',) or both: is the batch's COMMIT (the last one) on the
    database's side at point k?  Earlier commits must write nothing (checked in
    run_sequence), so the database before the run stands for every point before it."""
    sent = [i for i, o in enumerate(ops) if o[0] == 'commit_sent']
    done = [i for i, o in enumerate(ops) if o[0] == 'commit_done']
    if not sent or k <= sent[-1]:
        return ('pre',)
    if done and k > done[-1]:
        return ('post',)
    return ('pre', 'post')


# --- the checkpoint's identities, carried over to the copies ---------------------------

def fix_identities(text, idmap):
    """Rewrite `file B SIZE MTIME DEV INO NAME` lines whose (dev, ino) the recording's
    file had to the copy's, and recompute the crc of a record whose crc was right."""
    lines = text.split(b'\n')
    out, start = [], 0
    for ln in lines:
        f = ln.split(b' ')
        if f[0] == b'file' and len(f) == 7 and (f[4], f[5]) in idmap:
            f[4], f[5] = idmap[(f[4], f[5])]
            ln = b' '.join(f)
        if f[0] == b'end' and len(f) == 3:
            body = b''.join(x + b'\n' for x in out[start:])
            orig = b''.join(x + b'\n' for x in lines[start:len(out)])
            if b'%08x' % zlib.crc32(orig) == f[2]:
                ln = b'end ' + f[1] + b' ' + b'%08x' % zlib.crc32(body)
        out.append(ln)
        if f[0] == b'end':
            start = len(out)
        if f[0] == b'batch' and start != len(out) - 1:
            start = len(out) - 1
    return b'\n'.join(out)


def materialize(files, dirs, base, into, inode0):
    """Write the state under `into` (paths relative to base); returns its hash."""
    if os.path.exists(into):
        shutil.rmtree(into)
    for d in sorted(dirs):
        os.makedirs(os.path.join(into, os.path.relpath(d, base)), exist_ok=True)
    idmap, later = {}, []
    for p, (ino, b) in sorted(files.items()):
        q = os.path.join(into, os.path.relpath(p, base))
        with open(q, 'wb') as f:
            f.write(b)
        if ino in inode0:
            st = inode0[ino][2]
            os.utime(q, ns=(st.st_atime_ns, st.st_mtime_ns))
            now = os.stat(q)
            idmap[(b'%d' % st.st_dev, b'%d' % st.st_ino)] = (b'%d' % now.st_dev, b'%d' % now.st_ino)
        if os.path.basename(p) in ('checkpoint', 'checkpoint.journal'):
            later.append(q)
    for q in later:
        with open(q, 'rb') as f:
            t = f.read()
        with open(q, 'wb') as f:
            f.write(fix_identities(t, idmap))
    h = hashlib.sha256()
    for p, (ino, b) in sorted(files.items()):
        h.update(os.path.relpath(p, base).encode('utf-8', 'surrogateescape') + b'\0')
        h.update(hashlib.sha256(b).digest())
    for d in sorted(dirs):
        h.update(b'D' + os.path.relpath(d, base).encode() + b'\0')
    return h.hexdigest()


# --- the sequences and their checks --------------------------------------------------

class Ctx:
    def __init__(self, a):
        self.a = a
        self.env = dict(os.environ)
        # LeakSanitizer cannot run under strace (ptrace), nor is a leak a crash state
        self.env['ASAN_OPTIONS'] = self.env.get('ASAN_OPTIONS', '') + ':detect_leaks=0'
        # every table of evstream's schema (issue 17 added evstream_slices), saved and
        # restored whole; foreign keys are not checked while a snapshot is put back
        self.tables = self.psql("SELECT string_agg(format('%I', tablename), ',' ORDER BY "
                                "tablename) FROM pg_tables WHERE schemaname = 'public'").split(',')
        h = subprocess.run([os.path.join(a.bin, 'evstream'), '--help'], capture_output=True)
        self.sessions = b'copy_sessions' in h.stdout + h.stderr

    def psql(self, sql):
        r = subprocess.run([self.a.psql, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-At', '-d',
                            self.a.conninfo, '-c', sql], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError('psql: ' + r.stderr)
        return r.stdout.strip()

    def snapshot(self, name):
        self.psql('DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s; ' % (name, name) +
                  ' '.join('CREATE TABLE %s.%s AS SELECT * FROM %s;' % (name, t, t)
                           for t in self.tables))

    def restore(self, name):
        self.psql('BEGIN; SET LOCAL session_replication_role = replica; TRUNCATE ' +
                  ', '.join(self.tables) + '; ' +
                  ' '.join('INSERT INTO %s OVERRIDING SYSTEM VALUE SELECT * FROM %s.%s;'
                           % (t, name, t) for t in self.tables) + ' COMMIT;')

    def evstream(self, spool, ckpt, clean, timeout=60):
        cmd = [os.path.join(self.a.bin, 'evstream'), '--spool_dir=' + spool,
               '--checkpoint_dir=' + ckpt, '--conninfo=' + self.a.conninfo, '--once',
               '--retry_max=1', '--max_files_per_trigger=0', '--clean_source=' + clean,
               '--trigger_interval=0.05']
        if self.sessions:
            # one commit per batch: the database side between the commits of a batch
            # COPYed over several sessions is not modelled (yet)
            cmd.append('--copy_sessions=1')
        return cmd


def valid_ids(b):
    return {ln.split(b',')[0] for ln in b.split(b'\n')[1:] if VALID_ROW.match(ln)}


def evgen(ctx, spool, n, rows=20):
    subprocess.run([os.path.join(ctx.a.bin, 'evgen'), '--spool_dir=' + spool, '--count=%d' % n,
                    '--burst', '--rows_per_file=%d' % rows, '--invalid_rate=0.1',
                    '--log_level=warning'], env=ctx.env, check=True)


BAD = b'event_id,user_id,event_type,price,event_time\nx,1,view,1.00,2026-01-01 00:00:00\n'


SEQUENCES = {
    # name: (clean_source of an unrecorded batch before, or None; of the recorded one)
    'evgen_publish': (None, None),
    'first_batch_archive': (None, 'archive'),
    'second_batch_delete': ('archive', 'delete'),
    'second_batch_off': ('off', 'off'),
}


def setup(ctx, name, base):
    """Prepare the directories and database before sequence `name`; the command to record.
    A batch: --files good files and one without a column (quarantined); a second batch:
    the first one run (unrecorded), then --files more, with the checkpoint's journal."""
    spool, ckpt = os.path.join(base, 'spool'), os.path.join(base, 'ckpt')
    ctx.psql('TRUNCATE ' + ', '.join(ctx.tables))
    before, clean = SEQUENCES[name]
    os.makedirs(spool)
    if name == 'evgen_publish':
        os.makedirs(ckpt)
        cmd = [os.path.join(ctx.a.bin, 'evgen'), '--spool_dir=' + spool,
               '--count=%d' % ctx.a.publish, '--burst', '--rows_per_file=20',
               '--invalid_rate=0.1', '--log_level=warning']
        return spool, ckpt, cmd, 'archive'
    evgen(ctx, spool, ctx.a.files)
    with open(os.path.join(spool, 'events_00000000T000000.000000_bad.csv'), 'wb') as f:
        f.write(BAD)
    if before:
        r = subprocess.run(ctx.evstream(spool, ckpt, before), env=ctx.env, capture_output=True)
        if r.returncode != 0:
            raise RuntimeError('first batch failed: ' + r.stderr.decode()[-500:])
        evgen(ctx, spool, ctx.a.files)
    else:
        os.makedirs(ckpt)
    return spool, ckpt, ctx.evstream(spool, ckpt, clean), clean


def check_state(ctx, seq, files, base, state_dir, clean, archived, expect_all, maybe):
    """Run evstream's start-up on the state; the list of what is wrong (empty: fine)."""
    spool, ckpt = os.path.join(state_dir, 'spool'), os.path.join(state_dir, 'ckpt')
    r = subprocess.run(ctx.evstream(spool, ckpt, clean), env=ctx.env, capture_output=True,
                       timeout=120)
    wrong = []
    err = r.stderr.decode('utf-8', 'replace')
    if r.returncode != 0:
        said = [ln for ln in err.splitlines() if ' error: ' in ln or 'fatal' in ln]
        wrong.append('exit %d %s' % (r.returncode, ('saying: ' + said[-1][-300:]) if said
                                     else 'WITHOUT saying why: ' + err[-300:]))
    got = ctx.psql('SELECT event_id FROM events').split()
    gotset = {g.encode() for g in got}
    if len(got) != len(gotset):
        wrong.append('%d event_ids twice' % (len(got) - len(gotset)))
    twice = ctx.psql('SELECT count(*) - count(DISTINCT f) FROM evstream_batches, unnest(files) f')
    if twice != '0':
        wrong.append('%s files in two batches' % twice)
    for ids in expect_all:
        miss = ids - gotset
        if miss:
            wrong.append('a published file skipped or lost: %d of its %d events missing'
                         % (len(miss), len(ids)))
    for ids in maybe:
        if gotset & ids and ids - gotset:
            wrong.append('a file loaded in part: %d of %d events' % (len(gotset & ids), len(ids)))
    if clean == 'archive':
        for name in archived:
            if not (os.path.exists(os.path.join(spool, 'archive', name)) or
                    os.path.exists(os.path.join(spool, name))):
                wrong.append('%s is neither in archive/ nor in the spool' % name)
    if seq != 'evgen_publish':
        q = os.path.join(spool, 'quarantine')
        if not (os.path.isdir(q) and any(n.endswith('_bad.csv') for n in os.listdir(q))):
            wrong.append('the bad file is not in quarantine/')
        good_q = [n for n in (os.listdir(q) if os.path.isdir(q) else [])
                  if n.endswith('.csv') and not n.endswith('_bad.csv')]
        if good_q:
            wrong.append('good files quarantined: %s' % ', '.join(good_q))
    return wrong


def run_sequence(ctx, name, work, limit, rng):
    base = os.path.join(work, name, 'rec')
    spool, ckpt, cmd, clean = setup(ctx, name, base)
    ctx.snapshot('cs_pre')
    rec, initial, inode0 = record(cmd, [spool, ckpt], os.path.join(work, name, 'trace'),
                                  env=ctx.env)
    ctx.snapshot('cs_post')
    ops = rec.ops
    commits = [o for o in ops if o[0] == 'commit_sent']
    for o in commits[:-1]:
        if o[1] != 'no writes':
            print('WARNING %s: a commit before the last one writes (%s): the database side of '
                  'the points before the last commit is taken as before the run' % (name, o[1]))
    with open(os.path.join(work, name + '.ops'), 'w') as f:
        for i, o in enumerate(ops):
            f.write('%3d %s\n' % (i + 1, describe(o)))
    # what a clean finish holds: every good file's valid event_ids
    good, archived = {}, []
    for ino, (p, b, _) in inode0.items():
        if p.endswith('.csv') and not p.endswith('_bad.csv'):
            good[ino] = valid_ids(b)
            if os.path.dirname(p) == spool:
                archived.append(os.path.basename(p))
    published_at = {}     # evgen's new file: published once the dir fsync after its link returned
    if name == 'evgen_publish':
        for i, o in enumerate(ops):
            if o[0] == 'link' and o[2].endswith('.csv') and not o[2].startswith('.'):
                # published when the fsync of its directory returned; without one,
                # when evgen exited having reported it
                j = next((j for j in range(i, len(ops)) if ops[j][0] == 'dsync' and
                          ops[j][1] == o[1]), len(ops) - 1)
                published_at[o[3]] = j + 1
    final_files, _ = replay(initial, inode0, ops, len(ops), {i: 1 for i in range(len(ops))})
    newfile = {}
    for p, (ino, b) in final_files.items():
        if ino in published_at:
            newfile[ino] = valid_ids(b)
    seen, built, checked, sampled, failures = set(), 0, 0, 0, []
    state_dir = os.path.join(work, name, 'state')
    for k in range(len(ops) + 1):
        forced, free = forced_and_free(ops, k)
        cs, whole = combos(ops, free, limit, rng)
        sampled += not whole
        for c in cs:
            keep = {i: 1 for i in forced}
            keep.update(dict(zip(free, c)))
            files, dirs = replay(initial, inode0, ops, k, keep)
            for side in db_side(ops, k):
                built += 1
                # the same bytes are the same state only under the same promise: a
                # file evgen had published must be loaded, one it had not may be
                must = sorted(ino for ino in newfile if k >= published_at[ino])
                h = materialize(files, dirs, base, state_dir, inode0) + side + repr(must)
                if h in seen:
                    continue
                seen.add(h)
                ctx.restore('cs_' + side)
                expect = list(good.values()) + [ids for ino, ids in newfile.items()
                                                 if k >= published_at[ino]]
                maybe = [ids for ino, ids in newfile.items() if k < published_at[ino]]
                wrong = check_state(ctx, name, files, base, state_dir, clean, archived,
                                    expect, maybe)
                checked += 1
                if ctx.a.verbose:
                    print('state %s k=%d db=%s free=%s combo=%s files=%s -> %s' % (
                        name, k, side, [describe(ops[i]) for i in free], c,
                        sorted(os.path.relpath(p, base) for p in files), wrong or 'ok'))
                if wrong:
                    failures.append((k, side, c, free, wrong))
    print('RESULT %s ops=%d crash_points=%d states_built=%d distinct_checked=%d '
          'points_sampled=%d failed=%d' % (name, len(ops), len(ops) + 1, built, checked,
                                           sampled, len(failures)))
    for k, side, c, free, wrong in failures[:20]:
        kept = ', '.join('%s%s' % (describe(ops[i]), {0: ' (lost)', 1: '', 2: ' (torn)'}[v])
                         for i, v in zip(free, c))
        print('FINDING %s: crash after call %d of %d (%s), database %s; un-synced calls: %s; '
              'then: %s' % (name, k, len(ops), describe(ops[k - 1]) if k else 'none', side,
                            kept or 'none', '; '.join(wrong)))
    return failures


def describe(o):
    if o[0] == 'write':
        return 'write(ino %d, %d bytes at %d)' % (o[1], len(o[3]), o[2])
    if o[0] in ('link', 'unlink'):
        return '%s(%s/%s)' % (o[0], os.path.basename(o[1]), o[2])
    if o[0] == 'rename':
        return 'rename(%s/%s -> %s/%s)' % (os.path.basename(o[1]), o[2], os.path.basename(o[3]), o[4])
    if o[0] == 'mkdir':
        return 'mkdir(%s/%s)' % (os.path.basename(o[1]), o[2])
    if o[0] == 'trunc':
        return 'truncate(ino %d, %d)' % (o[1], o[2])
    if o[0] in ('fsync', 'dsync'):
        return 'fsync(%s)' % (('ino %d' % o[1]) if o[0] == 'fsync' else os.path.basename(o[1]))
    if o[0] == 'commit_sent':
        return 'COMMIT sent (%s)' % o[1]
    return o[0] + ('(%s)' % (o[1],) if len(o) > 1 else '')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--work', required=True)
    ap.add_argument('--bin', required=True)
    ap.add_argument('--psql', required=True)
    ap.add_argument('--conninfo', required=True)
    ap.add_argument('--limit', type=int, default=64)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--only', default='')
    ap.add_argument('--files', type=int, default=2, help='good files per batch')
    ap.add_argument('--publish', type=int, default=1, help='files evgen publishes')
    ap.add_argument('--verbose', action='store_true')
    a = ap.parse_args()
    ctx = Ctx(a)
    rng = random.Random(a.seed)
    os.makedirs(a.work, exist_ok=True)
    bad = 0
    for name in SEQUENCES:
        if a.only and a.only != name:
            continue
        bad += len(run_sequence(ctx, name, os.path.abspath(a.work), a.limit, rng))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
