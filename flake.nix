{
  description = "mdslab: a dev shell with every tool the lab uses, and its `services` profile as native processes";

  # Locked in flake.lock (revisions from shared/nix/PINS.md); `nix flake update` moves them.
  inputs = {
    nixpkgs.url = "github:nixos/nixpkgs/nixpkgs-unstable";
    flake-parts.url = "github:hercules-ci/flake-parts";
    systems.url = "github:nix-systems/default";
    process-compose-flake.url = "github:Platonic-Systems/process-compose-flake";
    services-flake.url = "github:juspay/services-flake";
  };

  outputs = inputs:
    let
      # The ports of the lab's `services` profile. Kafka, S3 and PostgreSQL are the defaults of
      # platform/mdslab/settings.py, so `MDSLAB_PROFILE=services` needs no endpoint variables;
      # tests/unit/test_nix_flake.py keeps the two in step.
      ports = {
        kafka = 9092;
        kafkaController = 9093;
        s3 = 8333;
        # SeaweedFS's own servers behind the S3 API (their gRPC ports are these + 10000)
        seaweedMaster = 9333;
        seaweedVolume = 8336;
        seaweedFiler = 8337;
        postgres = 5432;
        prometheus = 9090;
        grafana = 3000;
        # process-compose's own API; its default (8080) is the port of `mdslab airflow up`.
        processCompose = 8070;
      };

      # Relative to the directory `nix run .#services` starts in (the repo root): git ignores .mdslab/.
      stateDir = "./.mdslab/services";

      # No secret lives in the flake or the Nix store. Where a module writes an option into a shell
      # script (the S3 server's identity file is one), a parameter expansion there is read from
      # the environment when the service starts: the same MDSLAB_* variables the lab reads. Defaults are
      # the development placeholders of compose/.env.example.
      s3AccessKey = "\${MDSLAB_S3__ACCESS_KEY:-mdslab}";
      s3SecretKey = "\${MDSLAB_S3__SECRET_KEY:-change-me}";

      # A KRaft cluster id (22 characters of base64url, as `kafka-storage.sh random-uuid` prints): not a
      # secret, only the name the log directory is formatted with.
      kafkaClusterId = "V5LJ-eqcTP6ZijySiBUEtw";
    in
    inputs.flake-parts.lib.mkFlake { inherit inputs; } {
      # x86_64-linux, aarch64-linux, x86_64-darwin, aarch64-darwin.
      systems = import inputs.systems;
      imports = [ inputs.process-compose-flake.flakeModule ];

      perSystem = { self', pkgs, lib, ... }:
        let
          python = pkgs.python311;
          jdk = pkgs.jdk17_headless;
        in
        {
          # `nix run .#services`: Kafka (KRaft), SeaweedFS (S3), PostgreSQL + pgvector, Prometheus and Grafana on
          # 127.0.0.1, each a native process from nixpkgs under process-compose.
          process-compose."services" = { config, ... }:
            let
              kafka = config.services.apache-kafka."kafka";
              prometheus = config.services.prometheus."prometheus";
              grafana = config.services.grafana."grafana";
            in
            {
              imports = [ inputs.services-flake.processComposeModules.default ];

              # process-compose-flake's `cli.options` (nix/process-compose/cli-options.nix); a later
              # `--port N` (`nix run .#services -- --port N`) wins at run time.
              cli.options.port = ports.processCompose;

              services.apache-kafka."kafka" = {
                enable = true;
                port = ports.kafka;
                dataDir = "${stateDir}/kafka";
                # One node that is both broker and controller (KRaft, no ZooKeeper).
                settings = {
                  "node.id" = 1;
                  "process.roles" = [ "broker" "controller" ];
                  "listeners" = [
                    "PLAINTEXT://127.0.0.1:${toString ports.kafka}"
                    "CONTROLLER://127.0.0.1:${toString ports.kafkaController}"
                  ];
                  "advertised.listeners" = [ "PLAINTEXT://127.0.0.1:${toString ports.kafka}" ];
                  "listener.security.protocol.map" = [ "PLAINTEXT:PLAINTEXT" "CONTROLLER:PLAINTEXT" ];
                  "controller.listener.names" = [ "CONTROLLER" ];
                  "controller.quorum.voters" = [ "1@127.0.0.1:${toString ports.kafkaController}" ];
                  "inter.broker.listener.name" = "PLAINTEXT";
                  # A single broker: internal topics cannot have more than one replica.
                  "offsets.topic.replication.factor" = 1;
                  "transaction.state.log.replication.factor" = 1;
                  "transaction.state.log.min.isr" = 1;
                };
              };
              # KRaft needs its log directory formatted once. The module declares clusterId and
              # formatLogDirs, but at the pinned services-flake revision nothing runs the formatting
              # (juspay/services-flake#651), so this process does, idempotently, before the broker starts.
              settings.processes."kafka-format" = {
                namespace = kafka.namespace;
                command = pkgs.writeShellApplication {
                  name = "kafka-format";
                  runtimeInputs = [ kafka.package ];
                  text = ''
                    kafka-storage.sh format --ignore-formatted \
                      --cluster-id ${kafkaClusterId} \
                      --config ${kafka.configFiles.serverProperties}
                  '';
                };
              };
              settings.processes."kafka".depends_on."kafka-format".condition = "process_completed_successfully";

              # S3: SeaweedFS, the server `mdslab up` runs (MinIO, used before, was archived upstream in
              # February 2026 and later nixpkgs mark it insecure). nixpkgs' weed has no `mini` mode yet: a
              # `weed server` with its S3 gateway, whose one identity is written from the lab's variables
              # when it starts (0600, in the state dir; the Nix store holds no secret).
              settings.processes."s3" = {
                command = pkgs.writeShellApplication {
                  name = "s3";
                  runtimeInputs = [ pkgs.seaweedfs pkgs.coreutils ];
                  text = ''
                    data="${stateDir}/seaweedfs"
                    mkdir -p "$data"
                    umask 077
                    cat > "$data/s3.json" <<IDENTITIES
                    {"identities": [{"name": "lab", "credentials": [{"accessKey": "${s3AccessKey}", "secretKey": "${s3SecretKey}"}], "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}
                    IDENTITIES
                    exec weed server -dir="$data" -ip=127.0.0.1 -ip.bind=127.0.0.1 -volume.max=1000 \
                      -master.port=${toString ports.seaweedMaster} -volume.port=${toString ports.seaweedVolume} \
                      -filer -filer.port=${toString ports.seaweedFiler} \
                      -s3 -s3.port=${toString ports.s3} -s3.config="$data/s3.json"
                  '';
                };
                readiness_probe = {
                  http_get = { host = "127.0.0.1"; port = ports.s3; path = "/healthz"; };
                  initial_delay_seconds = 2;
                  period_seconds = 2;
                };
              };
              # In the `services` profile the lab expects its buckets to exist (the embedded profile
              # creates them itself): make them with SeaweedFS's shell once the S3 API answers. The same
              # list as Compose's s3-buckets (the broker bucket too, so both profiles show the same
              # buckets), named by the lab's settings and overridable with the same variables.
              settings.processes."s3-buckets" = {
                command = pkgs.writeShellApplication {
                  name = "s3-buckets";
                  runtimeInputs = [ pkgs.seaweedfs pkgs.coreutils ];
                  text = ''
                    for bucket in \
                      "''${MDSLAB_LAKE__RAW_BUCKET:-raw-data-bucket}" \
                      "''${MDSLAB_LAKE__CURATED_BUCKET:-curated-data-bucket}" \
                      "''${MDSLAB_ML__ARTIFACT_BUCKET:-mlflow-artifacts}" \
                      "''${MDSLAB_KAFKA__BROKER_BUCKET:-kafka-broker-data}"; do
                      echo "s3.bucket.create -name $bucket" | weed shell -master=127.0.0.1:${toString ports.seaweedMaster}
                    done
                  '';
                };
                depends_on."s3".condition = "process_healthy";
              };

              services.postgres."postgres" = {
                enable = true;
                listen_addresses = "127.0.0.1";
                port = ports.postgres;
                extensions = exts: [ exts.pgvector ];
                # The role the lab connects as (settings: user `mdslab`). pg_hba trusts loopback
                # connections (the module's defaults, a local development server), so no password is
                # stored anywhere; MDSLAB_POSTGRES__PASSWORD may stay empty.
                superuser = "mdslab";
                initialDatabases = map (name: { inherit name; }) [ "mdslab" "mlflow" "airflow" ];
                dataDir = "${stateDir}/postgres";
              };

              services.prometheus."prometheus" = {
                enable = true;
                listenAddress = "127.0.0.1";
                port = ports.prometheus;
                dataDir = "${stateDir}/prometheus";
              };
              # The module renders its own prometheus.yml from Nix (`extraConfig`) and passes it as the
              # only --config.file. The lab's configuration is the YAML shared with Compose, so Prometheus
              # is started on a store copy of observability/prometheus instead: its `rule_files` resolve
              # next to prometheus.yml (alerts.yml). Port, data dir and readiness probe stay the module's.
              settings.processes."prometheus".command = lib.mkForce (pkgs.writeShellApplication {
                name = "start-prometheus";
                # promtool is in the `cli` output of nixpkgs' prometheus (3.x), not on the server's PATH
                runtimeInputs = [ prometheus.package (prometheus.package.cli or prometheus.package) ];
                text = ''
                  config=${./observability/prometheus}/prometheus.yml
                  promtool check config "$config"
                  exec prometheus --config.file="$config" \
                    --storage.tsdb.path=${prometheus.dataDir} \
                    --web.listen-address=127.0.0.1:${toString ports.prometheus}
                '';
              });

              services.grafana."grafana" = {
                enable = true;
                http_port = ports.grafana;
                domain = "127.0.0.1";
                dataDir = "${stateDir}/grafana";
              };
              # The module builds its own provisioning directory from `datasources`/`providers` and passes
              # it on grafana's command line, where nothing can replace it; the lab provisions Grafana from
              # observability/grafana/provisioning (shared with Compose), so Grafana is started on a store
              # copy of it. Provisioning files expand environment variables: these two give them the
              # addresses of this profile. The admin password (used when Grafana creates its database) is
              # GRAFANA_ADMIN_PASSWORD when set, as in compose/.env, else Grafana's own GF_SECURITY_ADMIN_PASSWORD
              # or its first-login default.
              settings.processes."grafana".command = lib.mkForce (pkgs.writeShellApplication {
                name = "start-grafana";
                runtimeInputs = [ grafana.package pkgs.coreutils ];
                text = ''
                  export PROMETHEUS_URL="http://127.0.0.1:${toString ports.prometheus}"
                  export GRAFANA_DASHBOARDS_DIR="${./observability/grafana/dashboards}"
                  if [ -n "''${GRAFANA_ADMIN_PASSWORD:-}" ]; then
                    export GF_SECURITY_ADMIN_PASSWORD="$GRAFANA_ADMIN_PASSWORD"
                  fi
                  exec grafana server --homepath ${grafana.package}/share/grafana \
                    cfg:server.http_addr=127.0.0.1 \
                    cfg:server.http_port=${toString ports.grafana} \
                    cfg:paths.data="$(readlink -m ${grafana.dataDir})" \
                    cfg:paths.provisioning=${./observability/grafana/provisioning}
                '';
              });
            };

          apps.services = {
            type = "app";
            program = lib.getExe self'.packages.services;
          };

          # `nix develop`: the interpreter and JDK the lab runs on, uv and make for `make demo`/`make test`,
          # the shell tools its scripts call, and the clients of the services above.
          # tests/unit/test_nix_flake.py checks that every executable the code runs is in this list.
          devShells.default = pkgs.mkShell {
            packages = with pkgs; [
              python311
              jdk17_headless
              uv
              gnumake
              bashInteractive
              coreutils
              gnugrep
              gawk
              git
              curl
              jq
              postgresql
              apacheKafka
              kcat
              awscli2
              prometheus
              prometheus.cli
              grafana
              process-compose
            ]
            # headless Chromium renders the lab's pages in tests; nixpkgs builds it for Linux only
            ++ lib.optionals stdenv.isLinux [ chromium ];

            shellHook = ''
              export UV_PYTHON_DOWNLOADS=never
              export UV_PYTHON=${python}/bin/python3.11
              export JAVA_HOME=${jdk.home}
            ''
            # PyPI wheels (numpy, pyarrow, ray...) link libstdc++ and zlib, which NixOS has in no global path.
            + lib.optionalString pkgs.stdenv.isLinux ''
              export LD_LIBRARY_PATH=${lib.makeLibraryPath [ pkgs.stdenv.cc.cc.lib pkgs.zlib ]}''${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
            ''
            + ''
              echo "mdslab dev shell (Python 3.11, JDK 17, uv): make demo | make test | nix run .#services (see docs/nix.md)"
            '';
          };
        };
    };
}
