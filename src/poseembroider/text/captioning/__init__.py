"""Rule-based pose captioner: joint coordinates in the captioning frame, posecodes, captions."""
