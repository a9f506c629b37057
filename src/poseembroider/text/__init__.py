"""Text side of the toolkit: tokenizers, left/right text flip, the rule-based captioner
(`captioning/`, posecodes) and instruction writer (`correcting/`, paircodes)."""
