"""The steps of the fine-tuning recipe that touch data: prepare the splits and their cached
features, build the task model, one batch's loss, scoring, and the final summary."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from nucfm.data.labelled import LabelledSet, labelled_set, read_sources
from nucfm.data.splits import assign_splits
from nucfm.data.task_inputs import channels
from nucfm.errors import InputError
from nucfm.metrics import classification_metrics, regression_metrics
from nucfm.models.task import TaskConfig, TaskHead, TaskModel, pad_features

log = logging.getLogger("nucfm")


@dataclass
class Split:
    data: LabelledSet
    emb: list | None  # cached frozen LM states (L, D) float16, or None
    extra: list  # (L, C) channels


@dataclass
class FinetuneData:
    train: Split
    valid: Split
    test: Split
    names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop: int  # longest window the backbone takes in training
    unseen: np.ndarray  # test records whose sequence is not in the training file
    fingerprint: str | None
    backbone: object | None


def _features(cfg, seqs: list[str], backbone) -> tuple[list | None, list]:
    from nucfm.train.feature_cache import lm_embeddings, unpaired_probs

    emb = lm_embeddings(backbone, seqs, cfg.backbone_layer) if cfg.backbone_mode == "frozen" else None
    up = unpaired_probs(seqs) if "unpaired" in cfg.inputs else [None] * len(seqs)
    return emb, [channels(s, cfg.inputs, u) for s, u in zip(seqs, up)]


def _subset(ls: LabelledSet, idx) -> LabelledSet:
    idx = np.asarray(idx, int)
    return LabelledSet([ls.ids[i] for i in idx], [ls.seqs[i] for i in idx], ls.y[idx],
                       ls.table.iloc[idx].reset_index(drop=True))


def prepare(cfg) -> FinetuneData:
    """Read, check, split and featurise the data of a finetune config: every check (the peft
    extra, the splits, the class counts) comes before the features are computed."""
    from importlib.util import find_spec

    from nucfm.checkpoint import fingerprint, load_model

    if cfg.backbone_mode == "lora" and find_spec("peft") is None:
        raise InputError("backbone_mode lora needs peft: pip install 'nucfm[finetune]'")
    backbone = load_model(cfg.backbone) if cfg.backbone else None
    if backbone is not None and not hasattr(backbone, "embed"):
        raise InputError(f"{cfg.backbone} is not a language model; a backbone must be one")
    full, names = labelled_set(read_sources(cfg.train, cfg.seq_col, cfg.label_col, cfg.header_regex), cfg.task,
                               cfg.label_col, tuple(cfg.classes) if cfg.classes else None, cfg.transform, cfg.seed,
                               "training data")
    if cfg.limit_train:
        full = _subset(full, range(min(cfg.limit_train, len(full.seqs))))
    test = None
    if cfg.test:
        test, _ = labelled_set(read_sources(cfg.test, cfg.seq_col, cfg.label_col, cfg.header_regex), cfg.task,
                               cfg.label_col, names if cfg.task != "regression" else None, cfg.transform, cfg.seed,
                               "test data")
    col = full.table[cfg.split_col].tolist() if cfg.split == "column" and cfg.split_col in full.table else None
    parts = assign_splits(len(full.seqs), cfg.split, cfg.seed, cfg.valid_fraction, 0.0 if test else cfg.test_fraction,
                          cfg.folds, max(cfg.fold, 0), col)
    sizes = {name: int((parts == name).sum()) for name in ("train", "valid", "test")}
    if test is not None:
        sizes["test"] = len(test.seqs)
    for name, n in sizes.items():
        if not n:
            raise InputError(f"the {name} split is empty; check the split settings and the data")
    if cfg.task in ("binary", "multiclass") and len(set(full.y[parts == "train"].tolist())) < 2:
        raise InputError("the training split holds a single class; a classifier needs at least two")
    seqs = full.seqs + (test.seqs if test else [])
    emb, extra = _features(cfg, seqs, backbone)
    splits = {}
    for name in ("train", "valid", "test"):
        idx = np.flatnonzero(parts == name)
        splits[name] = Split(_subset(full, idx), [emb[i] for i in idx] if emb else None, [extra[i] for i in idx])
    if test is not None:
        n = len(full.seqs)
        splits["test"] = Split(test, emb[n:] if emb else None, extra[n:])
    seen = set(splits["train"].data.seqs) | set(splits["valid"].data.seqs)
    return _finish_prepare(cfg, splits, names, backbone, fingerprint(backbone) if backbone is not None else None, seen)


def _finish_prepare(cfg, splits, names, backbone, fp, seen) -> FinetuneData:
    y = splits["train"].data.y
    if cfg.task == "regression":
        mean, std = tuple(float(v) for v in y.mean(0)), tuple(float(v) or 1.0 for v in y.std(0))
    else:
        mean = std = ()
    crop = backbone.max_len if backbone is not None and backbone.max_len else 10**9
    for part, sp in splits.items():
        n_long = sum(len(q) > crop for q in sp.data.seqs)
        if n_long:
            log.warning("%s data: %d sequences are longer than the backbone's maximum of %d residues: %s", part,
                        n_long, crop, "embedded in overlapping windows" if cfg.backbone_mode == "frozen"
                        or part != "train" else "trained on a random window of each, predicted in windows")
    unseen = np.array([s not in seen for s in splits["test"].data.seqs])
    log.info("data: %s train, %d valid, %d test records (%d test sequences not in the training data)",
             len(splits["train"].data.seqs), len(splits["valid"].data.seqs), len(splits["test"].data.seqs),
             int(unseen.sum()))
    return FinetuneData(splits["train"], splits["valid"], splits["test"], names, mean, std, crop, unseen, fp, backbone)


def build_task_model(cfg, data: FinetuneData) -> TaskModel:
    from nucfm.checkpoint import registry

    bb = data.backbone
    tcfg = TaskConfig(task=cfg.task, labels=data.names, inputs=tuple(cfg.inputs), head=dict(cfg.head),
                      target_mean=data.mean, target_std=data.std, backbone=cfg.backbone,
                      backbone_mode=cfg.backbone_mode, backbone_layer=cfg.backbone_layer,
                      backbone_hidden_size=bb.hidden_size if bb is not None else 0,
                      backbone_fingerprint=data.fingerprint,
                      backbone_stored=bb is not None and (cfg.backbone_mode != "frozen"
                                                          or str(cfg.backbone) not in registry.MODELS))
    if bb is not None and cfg.backbone_mode == "lora":
        from nucfm.models.lora import add_lora

        bb = add_lora(bb, cfg.lora_rank, cfg.lora_alpha)
    elif bb is not None:
        bb.requires_grad_(cfg.backbone_mode == "full")
    return TaskModel(tcfg, TaskHead(tcfg), bb)


def task_model_for_saving(model: TaskModel) -> TaskModel:
    """The model as saved: LoRA adapters merged into plain backbone weights."""
    if model.config.backbone_mode != "lora":
        return model
    from nucfm.models.lora import merge_lora

    return TaskModel(model.config, model.head, merge_lora(model.backbone))


def _targets(model: TaskModel, y, rows, windows) -> torch.Tensor:
    cfg = model.config
    if cfg.task == "regression":
        t = (np.stack([y[i] for i in rows]) - np.array(cfg.target_mean)) / np.array(cfg.target_std)
        return torch.tensor(t, dtype=torch.float32)
    if cfg.task != "residue":
        return torch.tensor([int(y[i]) for i in rows])
    L = max(b - a for a, b in windows)
    out = torch.full((len(rows), L), -100, dtype=torch.long)
    for r, (i, (a, b)) in enumerate(zip(rows, windows)):
        out[r, : b - a] = torch.from_numpy(y[i][a:b])
    return out


def batch_loss(model: TaskModel, data: FinetuneData, rows: list[int], rng, trains_backbone: bool) -> torch.Tensor:
    """The training loss of one batch of training records ``rows``."""
    s = data.train
    windows = []
    for i in rows:
        L = len(s.data.seqs[i])
        a = rng.randrange(0, L - data.crop + 1) if L > data.crop else 0
        windows.append((a, min(L, a + data.crop)))
    feats, mask = pad_features([s.extra[i][a:b] for i, (a, b) in zip(rows, windows)])
    if trains_backbone:
        emb = model.backbone_states([s.data.seqs[i][a:b] for i, (a, b) in zip(rows, windows)])
    else:
        emb = pad_features([s.emb[i][a:b] for i, (a, b) in zip(rows, windows)])[0] if s.emb is not None else None
    logits = model.head(emb, feats, mask)
    target = _targets(model, s.data.y, rows, windows)
    if model.config.task == "regression":
        return torch.nn.functional.mse_loss(logits, target)
    if model.config.task == "residue":
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=-100)
    return torch.nn.functional.cross_entropy(logits, target)


def metrics_of(task: str, y, preds: list[np.ndarray]) -> dict:
    if task == "regression":
        P, Y = np.stack(preds), np.stack(list(y)).astype(float)
        out = {}
        for t in range(Y.shape[1]):
            m = regression_metrics(Y[:, t], P[:, t])
            out.update(m if t == 0 else {f"{k}_{t}": v for k, v in m.items()})
        return out
    if task == "residue":
        return classification_metrics(np.concatenate(list(y)), np.concatenate(preds))
    return classification_metrics(np.asarray(y, int), np.stack(preds))


def predict_split(model: TaskModel, split: Split) -> list[np.ndarray]:
    emb = split.emb if model.config.backbone_mode == "frozen" else None
    return model.predict(split.data.seqs, embeddings=emb, extra=split.extra)


def score(model: TaskModel, data: FinetuneData, name: str) -> dict:
    split = getattr(data, name)
    return metrics_of(model.config.task, split.data.y, predict_split(model, split))


def final_summary(recipe) -> dict:
    """Score the best checkpoint on valid and test; write test predictions; return the summary."""
    from nucfm.checkpoint import read_weights
    from nucfm.checkpoint.task import save_task_model

    cfg, data, model = recipe.cfg, recipe.data, recipe.model
    best = recipe.output / "best"
    state = read_weights(best)
    model.head.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("head.")})
    if model.config.backbone_stored and model.config.backbone_mode == "full":
        model.backbone.load_state_dict({k[9:]: v for k, v in state.items() if k.startswith("backbone.")})
    elif model.config.backbone_mode == "lora":
        model = task_model_for_saving(recipe.model)
        model.backbone.load_state_dict({k[9:]: v for k, v in state.items() if k.startswith("backbone.")})
    preds = predict_split(model, data.test)
    test = metrics_of(cfg.task, data.test.data.y, preds)
    unseen = np.flatnonzero(data.unseen)
    summary = {"train_records": len(data.train.data.seqs), "valid_records": len(data.valid.data.seqs),
               "test_records": len(data.test.data.seqs), "steps": recipe.step, "epochs": recipe.epoch,
               "train_minutes": round(recipe.minutes(), 2), "valid": score(model, data, "valid"), "test": test,
               "test_unseen": metrics_of(cfg.task, data.test.data.y[unseen], [preds[i] for i in unseen])
               if 0 < len(unseen) < len(preds) else None, "config": cfg.to_dict()}
    save_task_model(model, best, metadata={"kind": "task", "description": cfg.description or f"nucfm {cfg.task} model",
                                           "default": False, "training": summary})
    _write_predictions(recipe.output / "test_predictions.tsv", data.test.data, preds, model.config)
    log.info("done: %d steps, %.1f min; test %s %.4f", recipe.step, recipe.minutes(), cfg.metric,
             test.get(cfg.metric, float("nan")))
    return summary


def _write_predictions(path, ls: LabelledSet, preds, tcfg) -> None:
    from nucfm.paths import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        fh.write("id\ttrue\tpred\n")
        for rid, y, p in zip(ls.ids, ls.y, preds):
            if tcfg.task == "regression":
                fh.write(f"{rid}\t{','.join(f'{v:.5g}' for v in np.atleast_1d(y))}\t"
                         f"{','.join(f'{v:.5g}' for v in p)}\n")
            elif tcfg.task == "residue":
                true, pred = "".join(tcfg.labels[k] for k in y), "".join(tcfg.labels[k] for k in p.argmax(1))
                fh.write(f"{rid}\t{true}\t{pred}\n")
            else:
                fh.write(f"{rid}\t{tcfg.labels[int(y)]}\t{tcfg.labels[int(p.argmax())]}\n")
