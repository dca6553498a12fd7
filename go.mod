module github.com/backup-oracle/backup-oracle

go 1.25.0
