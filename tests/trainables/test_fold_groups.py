"""Which folds a fold group trains (no Ray)."""

from trainables.fold_groups import group_folds


def test_every_fold_goes_to_exactly_one_group():
    for folds in range(1, 8):
        for groups in range(1, folds + 1):
            assigned = [k for g in range(groups) for k in group_folds(folds, groups, g)]
            assert sorted(assigned) == list(range(folds))
            assert max(len(group_folds(folds, groups, g)) for g in range(groups)) == -(-folds // groups)
