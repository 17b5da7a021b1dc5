"The benchmark scripts' cheap paths: `bench_noise.py --merge` joins stored results, and refuses a file that is not one."
import json, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
RESULTS = ROOT/'benchmarks'/'results'

def merge(*files):
    return subprocess.run([sys.executable, str(ROOT/'benchmarks'/'bench_noise.py'), '--merge', *map(str, files)],
                          capture_output=True, text=True, cwd=ROOT)

def test_merge_orders_the_rows_by_noise_then_method():
    r = merge(RESULTS/'fmnist_noise20.json', RESULTS/'fmnist_noise10.json')
    assert r.returncode == 0, r.stderr
    rows = [[c.strip() for c in l.split('|')[1:3]] for l in r.stdout.split('\n\n')[0].splitlines()[2:]]   # the results table
    noise = [n for n, _ in rows]
    assert noise == sorted(noise, key=int) and set(noise) == {'10', '20'}
    assert [m for n, m in rows if n == '10'][:2] == ['baseline', 'ac']

def test_merge_refuses_a_file_that_is_not_a_results_json(tmp_path):
    bad = tmp_path/'notes.json'; bad.write_text(json.dumps({'runs': 'none'}))
    r = merge(RESULTS/'fmnist_noise10.json', bad)
    assert r.returncode == 2 and str(bad) in r.stderr and 'Traceback' not in r.stderr and r.stdout == ''
    r = merge(tmp_path/'missing.json')
    assert r.returncode == 2 and 'missing.json' in r.stderr
