"""wsd.io.audio.decode: streamed resampling, block-wise decoding, channels, header checks, memory."""

import os
import sys

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from conftest import ROOT, tone
from wsd.io.audio.decode import AudioStream, DecoderMessages, container_frames, probe
from wsd.io.audio.resample import StreamResampler, resample_ratio
from wsd.errors import BadInputError, InputMissingError


def stream_all(x, up, down, sizes):
    """Push x through a StreamResampler in blocks of the given sizes (cycled)."""
    rs = StreamResampler(up, down)
    out, i, k = [], 0, 0
    while i < len(x):
        n = sizes[k % len(sizes)]
        out.append(rs.push(x[i : i + n]))
        i, k = i + n, k + 1
    out.append(rs.finish())
    return np.concatenate(out)


@pytest.mark.parametrize("native,target", [(44100, 22050), (48000, 44100), (22050, 48000),
                                           (96000, 8000), (8000, 96000), (2000, 22050),
                                           (50, 22050), (192000, 44100), (44100, 44100 * 3),
                                           (64000, 22050)])
def test_stream_resampler_equals_resample_poly(native, target):
    up, down = resample_ratio(native, target)
    assert native * up == target * down
    rng = np.random.default_rng(native + target)
    x = rng.standard_normal(5000 + native % 977).astype(np.float32)
    ref = resample_poly(x, up, down)
    tiny = [[1], [333, 1, 2048]] if max(up, down) < 100 else [[50, 777]]  # 1-sample pushes
    for sizes in ([len(x)], [7, 1000, 3], [4096], [down, up + 1], *tiny):  # are slow at 441:1
        y = stream_all(x, up, down, sizes)
        assert len(y) == len(ref), sizes
        np.testing.assert_allclose(y, ref, atol=2e-5, err_msg=str(sizes))


def test_stream_resampler_short_and_empty_inputs():
    for n in (0, 1, 2, 5, 30):
        x = np.arange(n, dtype=np.float32) / 7
        y = stream_all(x, 2, 3, [1]) if n else StreamResampler(2, 3).finish()
        assert len(y) == len(resample_poly(x, 2, 3)) if n else len(y) == 0
        if n:
            np.testing.assert_allclose(y, resample_poly(x, 2, 3), atol=1e-6)


def test_blockwise_decoding_counts_frames(tmp_path):
    x = tone(8000, 10.3)
    sf.write(tmp_path / "a.wav", x, 8000)
    s = AudioStream(tmp_path / "a.wav", block_frames=1000)
    blocks = list(s)
    assert max(len(b) for b in blocks) == 1000 and len(blocks) == 83
    assert s.stats.frames_decoded == len(x) == s.stats.samples_out
    assert not s.stats.truncated and s.stats.warnings == []
    np.testing.assert_allclose(np.concatenate(blocks), x, atol=1 / 32768)


def test_resampled_stream_equals_whole_file_resample(tmp_path):
    x = tone(48000, 2.0)
    sf.write(tmp_path / "a.flac", x, 48000)
    s = AudioStream(tmp_path / "a.flac", target_rate=44100, block_frames=4096)
    y = np.concatenate(list(s))
    x16 = sf.read(tmp_path / "a.flac", dtype="float32")[0]
    np.testing.assert_allclose(y, resample_poly(x16, 147, 160), atol=2e-5)
    assert s.stats.frames_decoded == 96000 and s.stats.samples_out == 88200


def test_channel_pick_and_mix(tmp_path):
    sr = 8000
    base = tone(sr, 1.0)
    six = np.stack([base * (c + 1) / 8 for c in range(6)], axis=1)
    sf.write(tmp_path / "six.wav", six, sr, subtype="FLOAT")
    for c in range(6):
        got = np.concatenate(list(AudioStream(tmp_path / "six.wav", channel=str(c))))
        np.testing.assert_array_equal(got, six[:, c])
    mix = np.concatenate(list(AudioStream(tmp_path / "six.wav", channel="mix")))
    np.testing.assert_allclose(mix, six.mean(axis=1), atol=1e-7)
    with pytest.raises(BadInputError, match=r"has 6 channel\(s\); --channel 6 does not exist"):
        AudioStream(tmp_path / "six.wav", channel="6")


@pytest.mark.parametrize("subtype,tol", [("PCM_U8", 1 / 64), ("PCM_16", 1 / 16384),
                                         ("PCM_24", 1e-6), ("PCM_32", 1e-8), ("FLOAT", 0),
                                         ("DOUBLE", 0)])
def test_sample_formats_decode_to_the_same_signal(tmp_path, subtype, tol):
    x = tone(8000, 0.5)
    sf.write(tmp_path / "a.wav", x, 8000, subtype=subtype)
    assert probe(tmp_path / "a.wav").subtype == subtype
    y = np.concatenate(list(AudioStream(tmp_path / "a.wav")))
    np.testing.assert_allclose(y, x, atol=tol)


def test_nan_and_inf_are_rejected_with_their_time(tmp_path):
    x = tone(1000, 5.0)
    x[3210] = np.nan
    sf.write(tmp_path / "n.wav", x, 1000, subtype="FLOAT")
    with pytest.raises(BadInputError, match=r"NaN or infinite samples \(first at 3\.210 s"):
        list(AudioStream(tmp_path / "n.wav", block_frames=1000))
    x[3210] = 0
    x[4999] = -np.inf
    sf.write(tmp_path / "i.wav", x, 1000, subtype="FLOAT")
    with pytest.raises(BadInputError, match=r"first at 4\.999 s"):
        list(AudioStream(tmp_path / "i.wav"))


def truncate(src, dst, fraction=0.5):
    b = open(src, "rb").read()
    open(dst, "wb").write(b[: int(len(b) * fraction)])


@pytest.mark.parametrize("fmt", ["wav", "aiff", "flac", "mp3"])
def test_truncated_files_keep_what_decodes_and_say_so(tmp_path, fmt):
    sr = 22050
    x = tone(sr, 3.0)
    sf.write(tmp_path / f"full.{fmt}", x, sr)
    truncate(tmp_path / f"full.{fmt}", tmp_path / f"cut.{fmt}")
    info = probe(tmp_path / f"cut.{fmt}")
    assert info.frames_header == len(x)  # what the header promised, not what is there
    s = AudioStream(tmp_path / f"cut.{fmt}")
    n = sum(len(b) for b in s)
    assert 0.3 * len(x) < n < 0.6 * len(x)
    assert s.stats.truncated and s.stats.frames_decoded == n
    (msg,) = s.stats.warnings
    assert "truncated" in msg and str(len(x)) in msg and str(n) in msg
    full = AudioStream(tmp_path / f"full.{fmt}")
    assert sum(len(b) for b in full) >= len(x) and not full.stats.truncated


def test_container_frames_reads_the_header_promise(tmp_path):
    x = tone(8000, 1.0, channels=2)
    for name, kw in [("a.wav", {}), ("a.aiff", {}), ("r.wav", {"format": "RF64"}),
                     ("f.wav", {"subtype": "FLOAT"})]:
        sf.write(tmp_path / name, x, 8000, **kw)
        assert container_frames(tmp_path / name, probe(tmp_path / name).subtype) == 8000
        truncate(tmp_path / name, tmp_path / ("cut" + name), 0.7)
        assert container_frames(tmp_path / ("cut" + name), probe(tmp_path / name).subtype) \
            == 8000
        assert probe(tmp_path / ("cut" + name)).frames_header == 8000
    sf.write(tmp_path / "a.flac", x, 8000)
    assert container_frames(tmp_path / "a.flac", "PCM_16") is None


def test_mp3_without_length_tag_is_not_called_truncated(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_slice", ROOT / "benchmarks/slice.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)  # its mp3_frames(): the MPEG frames without Xing/Info

    sr = 44100
    sf.write(tmp_path / "a.mp3", tone(sr, 2.0), sr)
    assert probe(tmp_path / "a.mp3").length_exact
    (tmp_path / "raw.mp3").write_bytes(bench.mp3_frames(tmp_path / "a.mp3"))
    info = probe(tmp_path / "raw.mp3")
    assert not info.length_exact
    s = AudioStream(tmp_path / "raw.mp3")
    n = sum(len(b) for b in s)
    # all of it (libsndfile alone stops at its estimate, 26173 here), plus the encoder's
    # delay and padding, which only the missing tag would have let the decoder trim
    assert 2 * sr <= n < 2 * sr + 2 * 1152
    assert not s.stats.truncated and s.stats.warnings == []
    assert sf.info(str(tmp_path / "raw.mp3")).frames < 0.5 * n


def test_probe_errors_name_the_file(tmp_path):
    with pytest.raises(InputMissingError, match="no such file"):
        probe(tmp_path / "nope.wav")
    (tmp_path / "d.wav").mkdir()
    with pytest.raises(InputMissingError, match="is a folder"):
        probe(tmp_path / "d.wav")
    (tmp_path / "e.wav").write_bytes(b"")
    with pytest.raises(BadInputError, match="file is empty"):
        probe(tmp_path / "e.wav")
    (tmp_path / "t.wav").write_text("not audio at all\n" * 50)
    with pytest.raises(BadInputError, match=r"cannot decode audio \(Format not recognised"):
        probe(tmp_path / "t.wav")
    (tmp_path / "r.mp3").write_bytes(np.random.default_rng(0).bytes(100_000))
    with pytest.raises(BadInputError) as e:
        probe(tmp_path / "r.mp3")
    assert e.value.path == str(tmp_path / "r.mp3")
    assert "not a recognisable audio file" in e.value.reason
    assert "decoder said: Giving up searching valid MPEG header" in e.value.reason


def test_random_bytes_are_refused_whatever_the_extension(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(30):
        p = tmp_path / f"r{i}.{['mp3', 'wav', 'flac'][i % 3]}"
        head = b"ID3\x03\x00\x00\x00\x00\x00\x00" if i % 2 else b""
        p.write_bytes(head + rng.bytes(int(rng.integers(10, 70_000))))
        with pytest.raises(BadInputError, match="cannot decode audio"):
            list(AudioStream(p))


def test_decoder_messages_capture_fd2_and_restore_it(capfd):
    msgs = DecoderMessages()
    with msgs:
        os.write(2, b"[src/libmpg123/parse.c:1] error: junk here\nNote: Trying to resync...\n")
        print("python output still reaches stderr", file=sys.stderr)
    os.write(2, b"after\n")
    msgs.close()
    err = capfd.readouterr().err
    assert "junk here" not in err and "resync" not in err
    assert "python output still reaches stderr" in err and "after" in err
    assert msgs.lines == ["junk here", "Trying to resync..."]
    assert msgs.summary() == "junk here; Trying to resync..."


def test_long_file_memory_is_bounded(tmp_path):
    """Python-side peak memory of slicing a file (decode, resample, spectrogram, shard write;
    numpy arrays are traced by tracemalloc) stays at a few blocks, the same for 40 s and 2
    minutes of 44.1 kHz audio; loading the 2-minute file whole would take 21 MB as float32.
    (benchmarks/slice.py measures the whole process's RSS on 2-hour files.)"""
    import tracemalloc

    from wsd.pipeline.slice_file import SliceTask, slice_group
    from wsd.dsp.spectrogram import SpectrogramParams

    sr, peaks = 44100, []
    five = tone(sr, 5.0, amp=0.2)
    for seconds in (5, 40, 120):  # the 5-second run warms caches (imports, FFT plans)
        path = tmp_path / f"{seconds}.wav"
        with sf.SoundFile(path, "w", sr, 1, subtype="PCM_16") as f:
            for _ in range(seconds // 5):
                f.write(five)
        for rate in (sr, 22050):
            shards = tmp_path / f"s{len(peaks)}"
            shards.mkdir()
            task = SliceTask(0, (str(path),), str(shards),
                             SpectrogramParams(sample_rate=rate).as_dict(), "float16")
            tracemalloc.start()
            r = slice_group(task)
            peaks.append(tracemalloc.get_traced_memory()[1] / 2**20)
            tracemalloc.stop()
            assert r.files[0].n_windows == seconds * rate // (32 * 256)
    assert max(peaks) < 12, peaks
    assert abs(peaks[4] - peaks[2]) < 1 and abs(peaks[5] - peaks[3]) < 1, peaks


@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_read_excerpt_matches_the_stream_and_stops_at_the_end(tmp_path, fmt):
    from wsd.io.audio.decode import read_excerpt

    x = tone(8000, 2.0, channels=2)
    sf.write(tmp_path / f"a.{fmt}", x, 8000)
    whole = np.concatenate(list(AudioStream(tmp_path / f"a.{fmt}")))
    y, sr = read_excerpt(tmp_path / f"a.{fmt}", 0.5, 0.75)
    assert sr == 8000 and len(y) == 2000
    np.testing.assert_array_equal(y, whole[4000:6000])
    y, _ = read_excerpt(tmp_path / f"a.{fmt}", 0.5, 0.75, channel="1")
    np.testing.assert_allclose(y, x[4000:6000, 1], atol=1 / 32768)
    assert len(read_excerpt(tmp_path / f"a.{fmt}", 1.9, 3.0)[0]) == 800
    truncate(tmp_path / f"a.{fmt}", tmp_path / f"cut.{fmt}")
    assert len(read_excerpt(tmp_path / f"cut.{fmt}", 1.5, 1.75)[0]) == 0  # past the damage


def test_damage_in_the_middle_is_decoded_past_and_bounded(tmp_path):
    sr = 22050
    x = tone(sr, 20.0)
    sf.write(tmp_path / "a.mp3", x, sr)
    b = bytearray((tmp_path / "a.mp3").read_bytes())
    b[len(b) // 2 : len(b) // 2 + 1500] = np.random.default_rng(0).bytes(1500)
    (tmp_path / "bad.mp3").write_bytes(bytes(b))
    s = AudioStream(tmp_path / "bad.mp3")
    n = sum(len(v) for v in s)
    assert 0.95 * len(x) < n < len(x)  # a few frames lost, the second half kept
    assert s.stats.damaged and not s.stats.truncated
    (msg,) = s.stats.warnings
    assert "file is damaged" in msg and "decoding resumed" in msg
    assert f"by up to {(len(x) - n) / sr:.3f} s" in msg
