"""LiRA and RMIA against values worked out independently (scipy, brute force, by hand)."""

import numpy as np
import pytest
from scipy.special import softmax
from scipy.stats import norm

from mia_bench.attacks.lira import LiRA, gaussian_fits
from mia_bench.attacks.rmia import RMIA, log_pr_reference, pairwise_dominance
from mia_bench.errors import ConfigError
from mia_bench.signals.compute import PopulationView, ReferenceSignals, Signals, true_class_stats


def test_true_class_stats_by_hand_and_stable():
    z = np.array([[2.0, 0.0, -1.0], [0.0, 50.0, -50.0]])
    y = np.array([0, 1])
    log_py, phi = true_class_stats(z, y)
    p = softmax(z, axis=1)
    assert log_py[0] == pytest.approx(np.log(p[0, 0]))
    assert phi[0] == pytest.approx(np.log(p[0, 0] / (1 - p[0, 0])))
    # p_y = 1 - 2e-22 rounds to 1 in float64; phi = 50 - logsumexp(0, -100) ~ 50 stays finite
    assert phi[1] == pytest.approx(50.0 - np.log1p(np.exp(-100.0)))
    assert np.isfinite(phi).all()


def test_gaussian_fits_by_hand():
    # 4 models x 2 samples; IN models of sample 0: {0, 1}, of sample 1: {2, 3}
    phi = np.array([[1.0, 0.0], [3.0, 2.0], [0.0, 4.0], [2.0, 8.0]])
    keep = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=bool)
    f = gaussian_fits(phi, keep, "per_example")
    np.testing.assert_allclose(f["mu_in"], [2.0, 6.0])
    np.testing.assert_allclose(f["mu_out"], [1.0, 1.0])
    # unbiased: sample 0 IN {1, 3}: var 2; sample 1 IN {4, 8}: var 8
    np.testing.assert_allclose(f["sd_in"], np.sqrt([2.0, 8.0]))
    np.testing.assert_allclose(f["sd_out"], np.sqrt([2.0, 2.0]))
    g = gaussian_fits(phi, keep, "global")
    # pooled IN: (1 + 1 + 4 + 4) / (4 - 2) = 5; pooled OUT: (1 + 1 + 1 + 1) / 2 = 2
    np.testing.assert_allclose(g["sd_in"], np.sqrt([5.0, 5.0]))
    np.testing.assert_allclose(g["sd_out"], np.sqrt([2.0, 2.0]))


def _reference(n_models=8, n_pop=40, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    keep = np.zeros((n_models, n_pop), bool)
    for j in range(n_pop):
        keep[rng.permutation(n_models)[: n_models // 2], j] = True
    labels = rng.integers(0, n_classes, n_pop)
    logits = [
        rng.normal(size=(n_pop, n_classes)) + 2.0 * keep[m][:, None] * np.eye(n_classes)[labels]
        for m in range(n_models)
    ]
    return ReferenceSignals.from_logits(logits, labels, keep), rng


def _audited(ref, rng, query_pos, member):
    n_pop, c = len(ref.labels), 3
    pop_logits = rng.normal(size=(n_pop, c))
    # members get a confident true class
    pop_logits[query_pos[member], ref.labels[query_pos[member]]] += 3.0
    return Signals(
        logits=pop_logits[query_pos].astype(np.float32),
        labels=ref.labels[query_pos],
        member=member,
        population=PopulationView(index=query_pos, logits=pop_logits.astype(np.float32)),
    )


def test_lira_scores_match_scipy_formulas():
    ref, rng = _reference()
    q = np.arange(0, 20)
    s = _audited(ref, rng, q, rng.random(20) < 0.5)
    att = LiRA(num_models=8, variance="per_example")
    att.name = "lira"
    att.set_reference(ref)
    sc = att.score(s)
    for k, j in enumerate(q):
        phi_obs = true_class_stats(s.logits[k : k + 1].astype(np.float64), s.labels[k : k + 1])[1][
            0
        ]
        ins, outs = ref.phi[ref.keep[:, j], j], ref.phi[~ref.keep[:, j], j]
        llr = norm.logpdf(phi_obs, ins.mean(), ins.std(ddof=1)) - norm.logpdf(
            phi_obs, outs.mean(), outs.std(ddof=1)
        )
        assert sc["lira_online"][k] == pytest.approx(llr, rel=1e-6)
        # offline: Pr[Z <= phi_obs] under the OUT Gaussian, reported as -log Pr[Z > phi_obs]
        tail = norm.sf(phi_obs, outs.mean(), outs.std(ddof=1))
        assert sc["lira_offline"][k] == pytest.approx(-np.log(tail), rel=1e-6)


def test_lira_detects_members_of_a_simulated_model():
    # phi_IN ~ N(mu_j + 3, 1), phi_OUT ~ N(mu_j, 1) with per-example offsets mu_j that make a
    # global threshold on phi weak; LiRA removes the offsets.
    rng = np.random.default_rng(1)
    n, n_models = 2000, 16
    keep = np.zeros((n_models, n), bool)
    for j in range(n):
        keep[rng.permutation(n_models)[:8], j] = True
    mu = rng.normal(0, 4, n)
    phi = mu + 3.0 * keep + rng.normal(size=(n_models, n))
    ref = ReferenceSignals(keep=keep, labels=np.zeros(n, int), log_py=np.zeros_like(phi), phi=phi)
    member = rng.random(n) < 0.5
    phi_obs = mu + 3.0 * member + rng.normal(size=n)
    # logits whose phi is phi_obs: two classes, z = (phi_obs, 0)
    logits = np.stack([phi_obs, np.zeros(n)], 1)
    s = Signals(logits, np.zeros(n, int), member, population=PopulationView(np.arange(n), logits))
    att = LiRA(num_models=16, variance="auto")
    att.name = "lira"
    att.set_reference(ref)
    from sklearn.metrics import roc_auc_score

    auc_raw = roc_auc_score(member, phi_obs)
    auc_on = roc_auc_score(member, att.score(s)["lira_online"])
    auc_off = roc_auc_score(member, att.score(s)["lira_offline"])
    # Bayes-optimal AUC for N(3, 1) vs N(0, 1) is Phi(3 / sqrt 2) = 0.983
    assert auc_raw < 0.8 and auc_on > 0.95 and auc_off > 0.95


def test_pairwise_dominance_matches_brute_force():
    rng = np.random.default_rng(0)
    x, z = rng.normal(size=50), rng.normal(size=70)
    z[:5] = x[:5] - np.log(2.0)  # exact ties at gamma = 2 count as dominated (>=)
    for gamma in (0.5, 1.0, 2.0):
        brute = (np.exp(x[:, None] - z[None, :]) >= gamma * (1 - 1e-12)).mean(1)
        np.testing.assert_allclose(pairwise_dominance(x, z, gamma), brute)


def test_log_pr_reference_by_hand():
    # 2 models, 1 sample: p = 0.8 in model 0 (IN), 0.2 in model 1 (OUT)
    ref = ReferenceSignals(
        keep=np.array([[True], [False]]),
        labels=np.array([0]),
        log_py=np.log([[0.8], [0.2]]),
        phi=np.zeros((2, 1)),
    )
    assert np.exp(log_pr_reference(ref, "online", 0.3))[0] == pytest.approx(0.5)
    # offline: ((1 + a) * 0.2 + (1 - a)) / 2
    assert np.exp(log_pr_reference(ref, "offline", 0.3))[0] == pytest.approx((1.3 * 0.2 + 0.7) / 2)
    assert np.exp(log_pr_reference(ref, "offline", 1.0))[0] == pytest.approx(0.2)


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_rmia_matches_direct_definition(mode):
    ref, rng = _reference(n_pop=60)
    q = np.arange(10, 40)
    s = _audited(ref, rng, q, rng.random(30) < 0.5)
    att = RMIA(num_models=8, mode=mode, a=0.4, gamma=1.5)
    att.name = "rmia"
    att.set_reference(ref)
    got = att.score(s)["rmia"]
    # direct: probabilities, loops over x and z
    p_ref = np.exp(ref.log_py)
    p_theta = softmax(s.population.logits.astype(np.float64), axis=1)[np.arange(60), ref.labels]

    def pr(j):
        if mode == "online":
            return p_ref[:, j].mean()
        p_out = p_ref[~ref.keep[:, j], j].mean()
        return 0.5 * (1.4 * p_out + 0.6)

    zs = [j for j in range(60) if j not in set(q)]
    for k, j in enumerate(q):
        lr = [(p_theta[j] / pr(j)) / (p_theta[z] / pr(z)) for z in zs]
        assert got[k] == pytest.approx(np.mean(np.array(lr) >= 1.5))


def test_rmia_num_z_subsamples_non_queries():
    ref, rng = _reference(n_pop=60)
    s = _audited(ref, rng, np.arange(20), np.zeros(20, bool))
    att = RMIA(num_models=8, num_z=15, seed=3)
    att.name = "rmia"
    att.set_reference(ref)
    z = att.z_indices(s)
    assert len(z) == 15 and z.min() >= 20 and len(set(z)) == 15
    np.testing.assert_array_equal(z, att.z_indices(s))


@pytest.mark.parametrize(
    "cls,kw,key",
    [
        (LiRA, {"num_models": 3}, "num_models"),
        (LiRA, {"num_models": 0}, "num_models"),
        (LiRA, {"variance": "median"}, "variance"),
        (LiRA, {"num_models": 2, "variance": "per_example"}, "variance"),
        (RMIA, {"a": 1.5}, "a"),
        (RMIA, {"gamma": 0}, "gamma"),
        (RMIA, {"mode": "both"}, "mode"),
        (RMIA, {"num_z": 0}, "num_z"),
        (LiRA, {"statistic": "mode"}, "statistic"),
        (LiRA, {"ddof": 2}, "ddof"),
        (RMIA, {"trim": 0.5}, "trim"),
        (RMIA, {"tune_a": True}, "tune_a"),  # online
        (RMIA, {"tune_a": "yes", "mode": "offline"}, "tune_a"),
    ],
)
def test_bad_parameters_name_the_key(cls, kw, key):
    with pytest.raises(ConfigError) as err:
        cls(**kw)
    assert err.value.key == key


def test_attack_cache_key_covers_reference_signals_and_population(tmp_path):
    from mia_bench.cache import ModelCache
    from mia_bench.experiment.attacking import attack_outputs

    cache = ModelCache(tmp_path, kind="attacks")
    ref, rng = _reference()
    q = np.arange(20)
    target = _audited(ref, rng, q, rng.random(20) < 0.5)
    shadow = _audited(ref, rng, np.arange(20, 40), rng.random(20) < 0.5)

    def run(reference, tgt):
        att = LiRA(num_models=8)
        att.name = "lira"
        att.set_reference(reference)
        return attack_outputs(cache, att, {"num_models": 8}, 0, [shadow], tgt)

    first, again = run(ref, target), run(ref, target)
    assert not first[2] and again[2]
    np.testing.assert_array_equal(first[0]["lira_online"], again[0]["lira_online"])
    # other reference models, same audited signals: recomputed, different scores
    other_ref, _ = _reference(seed=5)
    other = run(other_ref, target)
    assert not other[2]
    assert not np.array_equal(other[0]["lira_online"], first[0]["lira_online"])
    # same queries and logits but another population view: recomputed
    moved = Signals(
        target.logits,
        target.labels,
        target.member,
        population=PopulationView(q + 1, target.population.logits),
    )
    assert not run(ref, moved)[2]


def test_gaussian_fits_median_and_ddof_by_hand():
    # one sample, 6 models: IN {1, 2, 10}, OUT {0, 0, 3}
    phi = np.array([[1.0], [2.0], [10.0], [0.0], [0.0], [3.0]])
    keep = np.array([[1], [1], [1], [0], [0], [0]], dtype=bool)
    f = gaussian_fits(phi, keep, "per_example", statistic="median", ddof=0)
    assert (f["mu_in"][0], f["mu_out"][0]) == (2.0, 0.0)
    # about the means 13/3 and 1: IN squares 100/9 + 49/9 + 289/9 = 438/9, / 3; OUT 6 / 3
    assert f["sd_in"][0] == pytest.approx(np.sqrt(438 / 27))
    assert f["sd_out"][0] == pytest.approx(np.sqrt(2.0))
    g = gaussian_fits(phi, keep, "per_example")  # mean, ddof 1
    assert (g["mu_in"][0], g["mu_out"][0]) == pytest.approx((13 / 3, 1.0))
    assert g["sd_in"][0] == pytest.approx(np.sqrt(438 / 18))


def test_lira_median_ddof0_matches_the_authors_scoring_formula():
    # A transcription of the online score of tensorflow/privacy's mi_lira_2021 (per sample:
    # np.median and np.std over the IN and the OUT reference models, then
    # logpdf_in - logpdf_out), computed sample by sample with plain numpy/scipy.
    ref, rng = _reference(n_models=8, n_pop=30)
    query_pos = np.arange(0, 30, 3)
    member = np.arange(len(query_pos)) % 2 == 0
    s = _audited(ref, rng, query_pos, member)
    attack = LiRA(num_models=8, variance="per_example", statistic="median", ddof=0)
    attack.name = "lira"
    attack.set_reference(ref)
    got = attack.score(s)["lira_online"]
    phi_obs = true_class_stats(s.logits.astype(np.float64), s.labels)[1]
    for i, j in enumerate(query_pos):
        dat_in, dat_out = ref.phi[ref.keep[:, j], j], ref.phi[~ref.keep[:, j], j]
        want = norm.logpdf(phi_obs[i], np.median(dat_in), np.std(dat_in)) - norm.logpdf(
            phi_obs[i], np.median(dat_out), np.std(dat_out)
        )
        assert got[i] == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_rmia_trim_is_scipy_trim_mean(mode):
    from scipy.stats import trim_mean

    ref, _ = _reference(n_models=10, n_pop=12)
    got = log_pr_reference(ref, mode, a=0.3, trim=0.2)
    p = np.exp(ref.log_py)
    for j in range(12):
        values = p[:, j] if mode == "online" else p[~ref.keep[:, j], j]
        pr = trim_mean(values, 0.2)  # 10 values: 2 cut from each end; 5 values: 1
        if mode == "offline":
            pr = 0.5 * (1.3 * pr + 0.7)
        assert got[j] == pytest.approx(np.log(pr), rel=1e-12)
    assert not np.allclose(got, log_pr_reference(ref, mode, a=0.3))


def test_rmia_tuned_a_is_the_best_auc_of_a_direct_offline_attack():
    from sklearn.metrics import roc_auc_score

    ref, rng = _reference(n_models=8, n_pop=40, seed=3)
    # Reference model 0 attacked with models 1..7, written out sample by sample.
    p = np.exp(ref.log_py)
    member = ref.keep[0]
    aucs = []
    grid = [round(0.1 * i, 1) for i in range(11)]
    for a in grid:
        pr = [0.5 * ((1 + a) * p[1:][~ref.keep[1:, j], j].mean() + (1 - a)) for j in range(40)]
        ratio = [p[0, j] / pr[j] for j in range(40)]
        z = [j for j in range(40) if not member[j]]
        score = [np.mean([ratio[x] / ratio[k] >= 1.0 for k in z]) for x in range(40)]
        aucs.append(roc_auc_score(member, score))
    want = grid[int(np.argmax(aucs))]
    attack = RMIA(num_models=8, mode="offline", tune_a=True)
    attack.set_reference(ref)
    assert attack.a == pytest.approx(want)
    assert attack.a != 0.3 or want == 0.3
