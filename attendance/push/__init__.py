"""Web push (RFC 8030, 8291, 8292): the wire side. `keys` makes and reads VAPID keys,
`client` sends one encrypted push through pywebpush, `simulator` stands in for a browser
vendor's push service (tests and `make run`)."""
