"""Streamlit dataset browsers (`visualize_dataset_script.py`, `visualize_dataset_fix.py`: start them with
`poseembroider demo dataset-script | dataset-fix`) and the streamlit pieces the apps share (`common.py`).

Importing this package imports no streamlit; its modules do, and only apps import them.
"""
