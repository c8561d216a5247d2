"""Work too long for a request: bulk jobs with progress (`runner`), what each kind does
(`kinds`), and the exports they write (`exports`)."""
