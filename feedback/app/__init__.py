"""The Streamlit app's shell: `screens` gathers what each page shows in one call, `views` renders it."""
