"""The data-composition layer: readers, validation, sampling, mixing, filters, manifests.

Modules (imported on use, so that importing :mod:`sftmix.data.records` stays light):

* ``records``  -- the normalised :class:`Example` every step consumes;
* ``loading``  -- raw records from JSON, JSONL(.gz), Parquet, ``datasets`` folders, the hub;
* ``formats``  -- ``READERS``: gsm8k, gsm8k_rft, math, alpaca, sharegpt, messages, humaneval, mbpp, ifeval;
* ``validate`` -- the record checks and :class:`RecordError`;
* ``sources``  -- ``load_source(spec) -> LoadedSource``;
* ``columnar`` -- conversation JSONL files parsed and checked column-wise in Arrow;
* ``arrow_jsonl`` -- a JSONL file read into Arrow once (memory map, line check, parse, sha256);
* ``duplicates`` -- exact duplicates within and across sources (fingerprint, then hash);
* ``sequence`` -- ``ExampleSeq``: a mixture as index arrays, Examples built on access;
* ``filters``  -- ``FILTERS`` (``no_code_math``); ``decontam`` -- n-gram decontamination;
* ``sampling`` -- ``nested_indices(n, amount, seed, *, kind)``, proportions;
* ``spec``     -- ``MixtureSpec`` / ``SourceSpec`` and ``load_mixture_spec(path)``;
* ``mixing``   -- ``build_mixture``, ``write_mixture``, ``read_mixture``; ``manifest`` -- its fields;
* ``cli``      -- ``sftmix data inspect`` and ``sftmix data mix``.

The user guide is docs/data.md.
"""
