"""Pools an eval's items.jsonl over its tasks: per system and round, accuracy with a Wilson 95 %
interval, on the items every system completed (all rounds); round r against round 1 and
against the first system's round 1 with exact McNemar p-values."""
import json, sys, math, collections
rows = [json.loads(l) for l in open(sys.argv[1])]
by = collections.defaultdict(dict)  # (system) -> {(task,item): {round: correct}}
systems = []
for r in rows:
    if r['system'] not in systems: systems.append(r['system'])
    by[r['system']].setdefault((r['task'], r['item']), {})[r['round']] = bool(r['correct'])
R = max(r['round'] for r in rows)
common = set.intersection(*[{k for k, v in by[s].items() if len(v) == R} for s in systems])
def wilson(k, n, z=1.96):
    if n == 0: return (0, 0)
    p = k / n; d = 1 + z*z/n; c = (p + z*z/(2*n)) / d; h = z*math.sqrt(p*(1-p)/n + z*z/(4*n*n)) / d
    return (c - h, c + h)
def mcnemar(b, c):
    n = b + c
    if n == 0: return 1.0
    k = min(b, c)
    p = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * p)
tasks = collections.Counter(t for t, _ in common)
print(f"items every system completed: {len(common)} ({dict(tasks)})\n")
print("| system | round | accuracy | 95 % CI | vs its round 1 (→✗ / →✓, p) | vs base round 1 (Δ, p) |")
print("|---|---|---|---|---|---|")
base = systems[0]
for s in systems:
    for rd in range(1, R + 1):
        k = sum(by[s][i][rd] for i in common); n = len(common)
        lo, hi = wilson(k, n)
        if rd == 1: own = "—"
        else:
            b = sum(by[s][i][1] and not by[s][i][rd] for i in common)
            c = sum((not by[s][i][1]) and by[s][i][rd] for i in common)
            own = f"{b} / {c}, p = {mcnemar(b, c):.3f}"
        if s == base and rd == 1: vb = "—"
        else:
            b = sum(by[base][i][1] and not by[s][i][rd] for i in common)
            c = sum((not by[base][i][1]) and by[s][i][rd] for i in common)
            kb = sum(by[base][i][1] for i in common)
            vb = f"{100*(k-kb)/n:+.1f} pp, p = {mcnemar(b, c):.3f}"
        print(f"| {s} | {rd} | {100*k/n:.1f} % ({k}/{n}) | {100*lo:.1f}–{100*hi:.1f} % | {own} | {vb} |")
