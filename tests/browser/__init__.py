"""Browser tests: the student release and the nbgrader extensions driven in JupyterLab in headless Chromium."""
