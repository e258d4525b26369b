module github.com/example/app

go 1.22.0

toolchain go1.22.3

require (
	github.com/pkg/errors v0.9.1
	golang.org/x/sys v0.20.0 // indirect
)
