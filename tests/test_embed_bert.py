"""The numpy BERT encoder and its static variant, on a tiny random model folder.

The folder has the sentence-transformers layout (config.json, model.safetensors,
tokenizer.json, 1_Pooling), so it exercises the same code as all-MiniLM-L6-v2, fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

from pointsman.embeddings import l2_normalise, load_encoder
from pointsman.embeddings.bert import BertEncoder, forward
from pointsman.embeddings.static import build_table, load_static
from pointsman.errors import ConfigError

WORDS = ["the", "cat", "sat", "on", "mat", "dog", "ran", "to", "a", "park", "fast", "slow"]
WORDS += ["red", "blue", "##s", "##ing", ".", ",", "?"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
HIDDEN, LAYERS, HEADS, INTER, POSITIONS = 16, 2, 4, 32, 24


def _tokenizer(path: Path) -> None:
    vocab = {token: i for i, token in enumerate(VOCAB)}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.add_special_tokens(VOCAB[:5])
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tok.save(str(path))


def _weights(rng: np.random.Generator) -> dict[str, np.ndarray]:
    def rand(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.3).astype(np.float32)

    w = {
        "embeddings.word_embeddings.weight": rand(len(VOCAB), HIDDEN),
        "embeddings.position_embeddings.weight": rand(POSITIONS, HIDDEN),
        "embeddings.token_type_embeddings.weight": rand(2, HIDDEN),
        "embeddings.LayerNorm.weight": 1 + rand(HIDDEN),
        "embeddings.LayerNorm.bias": rand(HIDDEN),
    }
    shapes = {
        "attention.self.query": (HIDDEN, HIDDEN), "attention.self.key": (HIDDEN, HIDDEN),
        "attention.self.value": (HIDDEN, HIDDEN), "attention.output.dense": (HIDDEN, HIDDEN),
        "intermediate.dense": (INTER, HIDDEN), "output.dense": (HIDDEN, INTER),
    }
    for i in range(LAYERS):
        for name, (out, inp) in shapes.items():
            w[f"encoder.layer.{i}.{name}.weight"] = rand(out, inp)
            w[f"encoder.layer.{i}.{name}.bias"] = rand(out)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            w[f"encoder.layer.{i}.{norm}.weight"] = 1 + rand(HIDDEN)
            w[f"encoder.layer.{i}.{norm}.bias"] = rand(HIDDEN)
    return w


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-bert")
    config = {
        "model_type": "bert", "hidden_act": "gelu", "hidden_size": HIDDEN,
        "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
        "intermediate_size": INTER, "max_position_embeddings": POSITIONS,
        "vocab_size": len(VOCAB), "layer_norm_eps": 1e-12,
    }
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 12}))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    save_file(_weights(np.random.default_rng(7)), str(folder / "model.safetensors"))
    _tokenizer(folder / "tokenizer.json")
    return folder


SENTENCES = ["the cat sat on the mat.", "a dog ran to the park", "red", "", "blue cats?"]


def test_folder_spec_gives_unit_vectors_of_the_model_width(tiny_model: Path) -> None:
    encoder = load_encoder(str(tiny_model), cache_size=0)
    vectors = encoder.encode(SENTENCES)
    assert vectors.shape == (len(SENTENCES), HIDDEN)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_batching_and_padding_do_not_change_a_vector(tiny_model: Path) -> None:
    encoder = BertEncoder(tiny_model, batch_size=2)
    together = encoder.encode(SENTENCES)
    alone = np.concatenate([encoder.encode([s]) for s in SENTENCES])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_truncation_uses_the_folder_max_length_or_the_spec(tiny_model: Path) -> None:
    long_text = " ".join(["the cat sat on the mat"] * 5)
    default = BertEncoder(tiny_model)
    assert default.max_tokens == 12
    prefix = default.tokenizer.decode(default.tokenizer.encode(long_text).ids)
    np.testing.assert_allclose(default.encode([long_text]), default.encode([prefix]), atol=1e-5)
    short = load_encoder(f"{tiny_model}:6", cache_size=0)
    assert not np.allclose(short.encode([long_text]), default.encode([long_text]), atol=1e-3)


def test_tanh_and_exact_gelu_agree_closely(tiny_model: Path) -> None:
    fast = BertEncoder(tiny_model).encode(SENTENCES)
    exact = BertEncoder(tiny_model, exact_gelu=True).encode(SENTENCES)
    assert np.min(np.sum(fast * exact, axis=1)) > 0.9999


def test_static_table_holds_centred_contextual_token_vectors(tiny_model: Path) -> None:
    bert = BertEncoder(tiny_model)
    table = build_table(bert, batch_size=5)
    assert table.shape == (len(VOCAB) + 1, HIDDEN)
    np.testing.assert_allclose(table[:-1].mean(axis=0), 0.0, atol=1e-5)
    dog, red = VOCAB.index("dog"), VOCAB.index("red")
    alone = np.array([[2, dog, 3], [2, red, 3]])
    hidden = forward(bert.weights, bert.config, alone, np.ones_like(alone))[:, 1, :]
    np.testing.assert_allclose(table[dog] - table[red], hidden[0] - hidden[1], atol=1e-5)
    np.testing.assert_allclose(table[-1], bert.encode([""])[0], atol=1e-5)


def test_static_spec_builds_caches_and_reloads_the_table(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POINTSMAN_CACHE_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match="build it first"):
        load_static(tiny_model, build=False)
    static = load_encoder(f"static:{tiny_model}", cache_size=0)
    assert list(tmp_path.glob("embeddings/static-*.npy"))
    vectors = static.encode(SENTENCES)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    reloaded = load_static(tiny_model, build=False)
    np.testing.assert_array_equal(reloaded.encode(SENTENCES), vectors)
    table = reloaded.table
    np.testing.assert_allclose(
        static.encode(["cat dog"])[0],
        l2_normalise(table[[VOCAB.index("cat"), VOCAB.index("dog")]].mean(axis=0)),
        atol=1e-6,
    )
    np.testing.assert_allclose(static.encode(["dog cat"]), static.encode(["cat dog"]), atol=1e-6)


def test_missing_pieces_are_config_errors(tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config\.json"):
        load_encoder(str(tmp_path))
    (tmp_path / "config.json").write_text((tiny_model / "config.json").read_text())
    with pytest.raises(ConfigError, match="safetensors"):
        load_encoder(str(tmp_path))
    with pytest.raises(ConfigError, match=r"model\.safetensors"):
        load_static(tmp_path, build=False)
