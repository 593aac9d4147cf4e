"""The one read layer every way out uses: segments, settings, profiles and runs (`catalog`), member and change
pages and streams (`members`), and what the dashboard shows (`overview`)."""
