"""The public 3DPW release -> `threedpw-sf<scale>` caches (the parser the original never released):
`sequences` (the sequence pickles, read safely and checked), `processing` (crops, SMPL -> SMPL-X body poses,
normalisation, visibility, caches), `fixture` (a small release in 3DPW's layout made by our own code)."""
