"""mixscope's front ends: the Streamlit app and the `mixscope` CLI."""
