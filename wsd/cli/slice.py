"""wsd slice: audio files -> windowed log spectrograms (a windows file)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from wsd.cli.common import (FORCE, QUIET, TRACEBACK, Reporter, history_entry,
                            scheduler_option, workers_option)


def slice_cmd(
    audio: List[str] = typer.Argument(..., metavar="AUDIO", help="Audio files, folders "
                                      "(searched recursively), @LIST.txt (one path a line) or "
                                      "- (paths on stdin)."),
    output: Path = typer.Option(..., "--output", "-o", help="Windows file to write (.h5)."),
    sample_rate: Optional[int] = typer.Option(None, "--sample-rate", help="Resample every "
                                              "file to HZ. Required when inputs differ."),
    n_fft: int = typer.Option(512, "--n-fft", help="FFT size (samples)."),
    hop_length: int = typer.Option(512, "--hop-length", help="Samples between frames."),
    frames: int = typer.Option(64, "--frames", help="Window length in STFT frames."),
    step: int = typer.Option(8, "--step", help="Window step in frames."),
    fmin: float = typer.Option(0.0, "--fmin", help="Lowest frequency kept (Hz)."),
    fmax: Optional[float] = typer.Option(None, "--fmax", help="Highest frequency kept (Hz) "
                                         "[default: sr/2 minus one bin; with inputs at "
                                         "lower native rates than --sample-rate, 0.95 of "
                                         "their lowest Nyquist]."),
    channel: str = typer.Option("mix", "--channel", help="'mix' (mean of channels) or a "
                                "channel number counted from 0."),
    freq_scale: str = typer.Option("mel", "--freq-scale", help="linear: the FFT bins; mel: "
                                   "--n-mels triangular bands on the mel scale between --fmin "
                                   "and --fmax."),
    n_mels: int = typer.Option(64, "--n-mels", help="Bands with --freq-scale mel."),
    scale: str = typer.Option("log1p", "--scale", help="db: magnitude in dB re a full-scale sine; "
                              "log1p: log(1 + 100 |X|); pcen: per-channel energy normalisation "
                              "(librosa's definition; state carried across blocks)."),
    whiten: Optional[float] = typer.Option(20.0, "--whiten", metavar="Q", help="Subtract each "
                                           "band's Q-th percentile over the recording (within "
                                           "60 s either side), then standardise the "
                                           "recording; --no-whiten: keep the levels."),
    no_whiten: bool = typer.Option(False, "--no-whiten", help="No whitening (the seeds')."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="CSV path,label or "
                                          "path,start_s,end_s,label, or a Raven selection "
                                          "table; each window gets the label of the event "
                                          "covering most of it."),
    dtype: str = typer.Option("float16", "--dtype", help="Storage type: float16 or float32."),
    join: str = typer.Option("auto", "--join", help="merge: one self-contained file; "
                             "virtual: map the shards in OUTPUT.shards/ (no copy; "
                             "keep the folder beside the file); auto: merge below 2 GiB."),
    workers: int = workers_option("Files sliced"),
    scheduler: Optional[str] = scheduler_option("the files"),
    drop_silence: bool = typer.Option(False, "--drop-silence", help="Keep only windows the "
                                      "silence detector of wsd detect --silence (its default "
                                      "thresholds) finds active; each recording's activity "
                                      "(events, windows sliced, noise floor) goes into the "
                                      "output's activity group."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Keep going past unreadable files; "
                                  "they are listed in the output's sources table and summary."),
    force: bool = FORCE,
    quiet: bool = QUIET,
    traceback: bool = TRACEBACK,
):
    """Cut audio into windows of log-magnitude spectrogram frames.

    Each file is decoded in blocks (bounded memory whatever its length), mixed to mono or one
    channel, resampled with a polyphase filter when --sample-rate differs, and framed without
    centring: frame i covers samples `[i*hop, i*hop + n_fft)` under a periodic Hann window. Of the
    n_fft/2+1 FFT bins the Nyquist bin is dropped, so the defaults give the Convnet V1 seed's
    32 x 256 windows. Values are magnitude in dB re a full-scale sine, floored at -100 dB
    (digital silence reads exactly -100); --freq-scale mel, --scale log1p|pcen and --whiten
    choose other front ends (wsd/dsp/frontend.py), stored with the windows so that models
    refuse windows made otherwise. A file shorter than one window gives one
    zero-padded window, flagged 'padded', with a warning. The audio after the last whole
    window (less than one step) is not covered.

    Headers are not trusted: the frames actually decoded are counted and compared with what
    the header promised (wav and aiff chunk sizes, flac STREAMINFO, an mp3's Xing/Info tag). A
    truncated file keeps what decodes, is reported with a warning giving both counts, and is
    marked 'truncated' in the output's sources table. Where the decoder fails part way
    (damaged flac or mp3), the audio up to the damage is kept and decoding resumes after it
    if the decoder can resync: the file is marked 'damaged', and the warning says by how much
    window times after the damage may be early (the audio lost). What the decoder itself
    complains about (mp3 resync notes) becomes one warning for the file.

    Files that cannot be used are errors naming the file, with no output written: empty,
    not audio, undecodable, NaN or infinite samples (float files), a --channel the file does
    not have (exit 65); missing (66). With --skip-bad such files are listed in the sources
    table with status 'bad' and the reason, warned about, and counted in the summary line.
    Folders are searched recursively for audio extensions (a folder named x.wav is a folder);
    a path starting with a dash is given after -- or as ./-x.wav.

    Each file of 16 MB or more (2 MB for mp3, ogg and opus) is sliced into its own shard
    under OUTPUT.shards/, smaller ones in groups of consecutive files (up to that size and
    32 files a group, one task and one shard each: the cost of a shard is paid once a
    group; with --workers N, a multiple of N groups of about equal size, so that no worker
    slices the last group alone), and the output is written to a hidden temporary name and
    renamed when complete, so a run that is killed leaves no output (or the previous one)
    and, re-run (with the same --workers), resumes from the finished shards and ends
    identical to an uninterrupted run (grouping does not change the output). A failed
    run removes its temporary files; finished shards stay for the re-run (the folder is
    removed when it holds none); a group is redone whole.
    """
    from wsd.io.inputs import expand_inputs
    from wsd.pipeline.slice import start_workers

    rep = Reporter(quiet, "wsd slice")
    files = expand_inputs(audio)
    start_workers(files, workers, scheduler)  # their imports overlap with ours and the headers'

    from wsd.dsp.spectrogram import SpectrogramParams
    from wsd.io.labels import read_labels
    from wsd.io.store import check_output
    from wsd.pipeline.slice import (SliceParams, auto_fmax, common_rate, describe_windows,
                                    native_rates, run_slice)

    check_output(output, force, inputs=files)  # before reading any audio header
    if sample_rate is None:
        sample_rate = common_rate(files, skip_bad)
    elif fmax is None:
        fmax = auto_fmax(native_rates(files, skip_bad), sample_rate)
        if fmax is not None:
            rep.note(f"some inputs have a lower native rate than {sample_rate} Hz: the band "
                     f"stops at {fmax:g} Hz (--fmax)")
    spec = SpectrogramParams(sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length,
                             frames=frames, step=step, fmin=fmin, fmax=fmax,
                             channel=channel, freq_scale=freq_scale, n_mels=n_mels,
                             scale=scale, whiten=None if no_whiten else whiten)
    params = SliceParams(spec, dtype=dtype, labels=str(labels) if labels else None, join=join,
                         workers=workers, skip_bad=skip_bad, drop_silence=drop_silence)
    table = read_labels(labels, n_inputs=len(files)) if labels else None
    s = run_slice(files, output, params, [history_entry("slice")], force=force,
                  scheduler=scheduler, label_table=table, progress=rep)
    if table is not None and table.unused():
        rep.warn(f"{len(table.unused())} label path(s) match no input, e.g. "
                 f"{table.unused()[0]}", str(labels))
    extra = [f"{s['padded']} padded", f"{s['truncated']} truncated", f"{s['damaged']} damaged",
             f"{len(s['bad'])} skipped as bad", f"{s['reused']} resumed"]
    extra = ", ".join(x for x in extra if not x.startswith("0 "))
    rep.note(f"{s['ok']}/{len(files)} files -> {s['windows']} windows of "
             f"{spec.frames}x{spec.bins}, {describe_windows(spec)}, {s['bytes'] / 1e6:.1f} MB "
             f"({s['mode']}) in {output}"
             + (f" ({extra})" if extra else ""))
    return 0
