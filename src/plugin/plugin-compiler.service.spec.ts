import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PluginCompilerOptions, PluginCompilerService, renderBuildPom } from './plugin-compiler.service';
import { PluginProject, POM_PATH } from './plugin-project';

const CALCULATOR = `package com.example.calc;

public final class Calculator {
    public static int add(int a, int b) { return a + b; }
}
`;
const MAIN = `package com.example.calc;

public final class CalcPlugin {
    public static void main(String[] args) { System.out.println(Calculator.add(2, 3)); }
}
`;

function createProject(overrides: Partial<PluginProject> = {}): PluginProject {
  return {
    name: 'Calc',
    packageName: 'com.example.calc',
    mainClass: 'com.example.calc.CalcPlugin',
    version: '1.0.0',
    files: [
      { path: 'src/main/java/com/example/calc/CalcPlugin.java', content: MAIN },
      { path: 'src/main/java/com/example/calc/Calculator.java', content: CALCULATOR },
      { path: 'src/main/resources/plugin.yml', content: 'name: Calc\nmain: com.example.calc.CalcPlugin\nversion: 1.0.0\n' },
    ],
    ...overrides,
  };
}

function withSource(path: string, content: string): PluginProject {
  const project = createProject();
  return { ...project, files: [...project.files.filter((f) => !f.path.endsWith('CalcPlugin.java')), { path, content }] };
}

function withSpigotPom(): PluginProject {
  const project = createProject();
  const pom =
    '<project><dependencies><dependency><groupId>org.spigotmc</groupId><artifactId>spigot-api</artifactId>' +
    '<version>1.20.4-R0.1-SNAPSHOT</version><scope>provided</scope></dependency></dependencies></project>';
  return { ...project, files: [...project.files, { path: POM_PATH, content: pom }] };
}

/** A stand-in for mvn: a fixed script written by the test, printing `output` and exiting with `code`. */
async function fakeMaven(dir: string, output: string, code: number): Promise<string> {
  const path = join(dir, 'fake-mvn');
  await writeFile(path, `#!/bin/sh\ncat <<'EOF'\n${output}\nEOF\nexit ${code}\n`);
  await chmod(path, 0o755);
  return path;
}

function processGone(pid: number): Promise<boolean> {
  return readFile(`/proc/${pid}/stat`, 'utf8').then(
    // An orphan may linger as a zombie when PID 1 does not reap; it runs nothing.
    (stat) => stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z'),
    () => true,
  );
}

describe(PluginCompilerService.name, () => {
  let tmpRoot: string;
  let fixtures: string;
  const service = (options: PluginCompilerOptions = {}) => new PluginCompilerService({ tmpRoot, ...options });

  beforeEach(async () => {
    tmpRoot = await mkdtemp(join(tmpdir(), 'plugin-compiler-spec-'));
    fixtures = await mkdtemp(join(tmpdir(), 'plugin-compiler-fixtures-'));
  });

  afterEach(async () => {
    // Every build directory must be gone, whatever the outcome.
    await expect(readdir(tmpRoot)).resolves.toEqual([]);
    await rm(tmpRoot, { recursive: true, force: true });
    await rm(fixtures, { recursive: true, force: true });
  });

  describe('javac', () => {
    it('compiles a dependency-free project', async () => {
      const result = await service({ tool: 'javac' }).compile(createProject());
      expect(result).toMatchObject({ success: true, tool: 'javac' });
      expect(result.log).toMatch(/produced: .*com\/example\/calc\/CalcPlugin\.class/);
      expect(result.log).toContain('com/example/calc/Calculator.class');
      expect(result.durationMs).toBeGreaterThan(0);
    });

    it('fails with the compiler message on a syntax error', async () => {
      const broken = withSource('src/main/java/com/example/calc/CalcPlugin.java', MAIN.replace('(2, 3));', '(2, 3))'));
      const result = await service({ tool: 'javac' }).compile(broken);
      expect(result).toMatchObject({ success: false, tool: 'javac' });
      expect(result.log).toContain("./src/main/java/com/example/calc/CalcPlugin.java:4: error: ';' expected");
      expect(result.log).not.toContain(tmpRoot);
      expect(result.log).toMatch(/exited with code 1/);
    });

    it('fails honestly on Bukkit imports it cannot resolve offline', async () => {
      const bukkit = withSource(
        'src/main/java/com/example/calc/CalcPlugin.java',
        'package com.example.calc;\nimport org.bukkit.plugin.java.JavaPlugin;\npublic final class CalcPlugin extends JavaPlugin {}\n',
      );
      const result = await service({ tool: 'javac' }).compile(bukkit);
      expect(result).toMatchObject({ success: false, tool: 'javac' });
      expect(result.log).toContain('src/main/java/com/example/calc/CalcPlugin.java:2: error:');
      expect(result.log).toContain('import org.bukkit.plugin.java.JavaPlugin;');
      expect(result.log).toContain('Bukkit/Spigot API is not available offline');
    });

    it('reports tool "none" when no compiler is installed', async () => {
      const result = await service({ mvnExecutable: 'no-such-mvn-xyz', javacExecutable: 'no-such-javac-xyz' }).compile(
        createProject(),
      );
      expect(result).toMatchObject({ success: false, tool: 'none' });
      expect(result.log).toContain('"no-such-mvn-xyz" not found; using javac');
      expect(result.log).toContain('"no-such-javac-xyz" not found');
    });
  });

  describe('mvn', () => {
    it('reports tool "none" when Maven is forced but missing', async () => {
      const result = await service({ tool: 'mvn', mvnExecutable: 'no-such-mvn-xyz' }).compile(createProject());
      expect(result).toMatchObject({ success: false, tool: 'none' });
      expect(result.log).toContain('"no-such-mvn-xyz" not found');
    });
  });

  describe('auto', () => {
    it('uses javac when mvn is not installed', async () => {
      const result = await service({ mvnExecutable: 'no-such-mvn-xyz' }).compile(createProject());
      expect(result).toMatchObject({ success: true, tool: 'javac' });
    });

    it('falls back to javac when Maven cannot resolve offline', async () => {
      const mvn = await fakeMaven(
        fixtures,
        '[ERROR] Failed to execute goal on project Calc: Could not resolve dependencies for project x: Could not find artifact org.spigotmc:spigot-api:jar:1.20.4-R0.1-SNAPSHOT',
        1,
      );
      const result = await service({ mvnExecutable: mvn }).compile(createProject());
      expect(result).toMatchObject({ success: true, tool: 'javac' });
      expect(result.log).toContain('cannot resolve plugins or dependencies offline; using javac');
      expect(result.log).toContain('Could not find artifact org.spigotmc:spigot-api');
    });

    it('skips Maven when a dependency is not in the local repository', async () => {
      const mvn = await fakeMaven(fixtures, 'fake mvn ran', 0);
      const result = await service({ mvnExecutable: mvn, mavenLocalRepository: fixtures }).compile(withSpigotPom());
      expect(result).toMatchObject({ success: true, tool: 'javac' });
      expect(result.log).toContain('mvn: skipped; not in the local Maven repository');
      expect(result.log).toContain('org.spigotmc:spigot-api:1.20.4-R0.1-SNAPSHOT');
      expect(result.log).not.toContain('fake mvn ran');
    });

    it('runs Maven when the dependencies are in the local repository', async () => {
      const mvn = await fakeMaven(fixtures, 'fake mvn ran', 0);
      const artifactDir = join(fixtures, 'repo', 'org', 'spigotmc', 'spigot-api', '1.20.4-R0.1-SNAPSHOT');
      await mkdir(artifactDir, { recursive: true });
      await writeFile(join(artifactDir, 'spigot-api-1.20.4-R0.1-SNAPSHOT.jar'), '');
      const result = await service({ mvnExecutable: mvn, mavenLocalRepository: join(fixtures, 'repo') }).compile(
        withSpigotPom(),
      );
      expect(result).toMatchObject({ success: true, tool: 'mvn' });
      expect(result.log).toContain('fake mvn ran');
    });

    it('keeps a Maven compile failure instead of falling back', async () => {
      const mvn = await fakeMaven(fixtures, "[ERROR] CalcPlugin.java:[4,55] ';' expected\n[ERROR] COMPILATION ERROR", 1);
      const result = await service({ mvnExecutable: mvn }).compile(createProject());
      expect(result).toMatchObject({ success: false, tool: 'mvn' });
      expect(result.log).toContain("';' expected");
    });

    it('builds a dependency-free project with whatever this machine has', async () => {
      const result = await service().compile(createProject());
      expect(result.success).toBe(true);
      expect(result.log).toMatch(result.tool === 'mvn' ? /produced: Calc-1\.0\.0\.jar/ : /Calculator\.class/);
    });
  });

  describe('limits', () => {
    it('kills the process tree on timeout', async () => {
      const script =
        "const c = require('child_process').spawn(process.execPath, ['-e', 'setTimeout(() => {}, 10000)'], { stdio: 'ignore' });" +
        "console.log('grandchild=' + c.pid); setTimeout(() => {}, 10000);";
      const started = Date.now();
      const result = await service({
        command: { command: process.execPath, args: ['-e', script], reportAs: 'javac' },
      }).compile(createProject(), { timeoutMs: 500 });
      expect(result).toMatchObject({ success: false, tool: 'javac' });
      expect(result.log).toContain('timed out');
      expect(Date.now() - started).toBeLessThan(5_000);
      const grandchild = Number(/grandchild=(\d+)/.exec(result.log)?.[1]);
      expect(grandchild).toBeGreaterThan(0);
      await new Promise((r) => setTimeout(r, 100));
      await expect(processGone(grandchild)).resolves.toBe(true);
    });

    it('caps the output with a marker', async () => {
      const result = await service({
        command: { command: process.execPath, args: ['-e', "process.stdout.write('x'.repeat(200000))"], reportAs: 'javac' },
      }).compile(createProject(), { outputCapBytes: 1024 });
      expect(result.success).toBe(true);
      expect(result.log).toContain('x'.repeat(1024));
      expect(result.log).not.toContain('x'.repeat(1025));
      expect(result.log).toContain(`[output truncated: ${200000 - 1024} more bytes]`);
      expect(result.log.length).toBeLessThan(2048);
    });

    it('refuses a project whose paths escape, writing nothing', async () => {
      const project = createProject();
      project.files.push({ path: '../escape.txt', content: 'x' });
      const result = await service({ tool: 'javac' }).compile(project);
      expect(result).toMatchObject({ success: false, tool: 'none' });
      expect(result.log).toContain('refused to build: path "../escape.txt"');
      await expect(readdir(join(tmpRoot, '..'))).resolves.not.toContain('escape.txt');
    });

    it('refuses duplicate paths instead of overwriting', async () => {
      const project = createProject();
      project.files.push({ ...project.files[0], content: 'class Other {}' });
      const result = await service({ tool: 'javac' }).compile(project);
      expect(result).toMatchObject({ success: false, tool: 'none' });
      expect(result.log).toContain('EEXIST');
    });
  });
});

describe(renderBuildPom.name, () => {
  const modelPom = `<project>
  <properties><spigot.version>1.20.4-R0.1-SNAPSHOT</spigot.version></properties>
  <dependencies>
    <dependency><groupId>org.spigotmc</groupId><artifactId>spigot-api</artifactId><version>\${spigot.version}</version><scope>provided</scope></dependency>
    <!-- <dependency><groupId>commented</groupId><artifactId>out</artifactId><version>1</version></dependency> -->
    <dependency><groupId>junit</groupId><artifactId>junit</artifactId><version>4.13.2</version><scope>test</scope></dependency>
    <dependency><groupId>evil</groupId><artifactId>local</artifactId><version>1</version><scope>system</scope><systemPath>/etc/passwd</systemPath></dependency>
    <dependency><groupId>com.google.code.gson</groupId><artifactId>gson</artifactId><version>\${missing}</version></dependency>
  </dependencies>
  <build><plugins><plugin><groupId>org.codehaus.mojo</groupId><artifactId>exec-maven-plugin</artifactId>
    <configuration><executable>sh</executable></configuration></plugin></plugins></build>
</project>`;

  it('carries only plain dependency coordinates from the model pom', () => {
    const project = createProject({ files: [...createProject().files, { path: POM_PATH, content: modelPom }] });
    const { pom, dependencies, skipped } = renderBuildPom(project, 17);
    expect(dependencies).toEqual(['org.spigotmc:spigot-api:1.20.4-R0.1-SNAPSHOT']);
    expect(skipped).toEqual(['evil:local:1', 'com.google.code.gson:gson:${missing}']);
    expect(pom).not.toMatch(/exec-maven-plugin|systemPath|junit|commented/);
    expect(pom).toContain('<maven.test.skip>true</maven.test.skip>');
    expect(pom).toContain('<proc>none</proc>');
    expect(pom).toContain('<maven.compiler.release>17</maven.compiler.release>');
  });
});
