module kzprobe

go 1.26.0
