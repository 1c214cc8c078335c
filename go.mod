module github.com/presenced/presenced

go 1.26.8

require (
	github.com/go-chi/chi/v5 v5.5.0
	github.com/golang-jwt/jwt/v5 v5.3.1
	github.com/gorilla/websocket v1.5.3
	go.uber.org/goleak v1.3.0
)

require golang.org/x/time v0.16.0
