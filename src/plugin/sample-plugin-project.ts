import { PLUGIN_API_VERSION, PLUGIN_YML_PATH } from './plugin-project';

/**
 * The answer the simulated provider gives for plugin generation: a well-formed
 * project of the requested name, so the endpoints can be explored with no provider.
 * Real providers never see it.
 */
export function samplePluginAnswer(name: string, prompt: string): string {
  const packageName = `com.example.${name.toLowerCase()}`;
  const mainClass = `${packageName}.${name}Plugin`;
  const description = `Simulated sample for: ${prompt.replace(/\s+/g, ' ').slice(0, 120)}`;
  return JSON.stringify({
    name,
    packageName,
    mainClass,
    version: '1.0.0',
    description,
    files: [
      {
        path: `src/main/java/${packageName.replace(/\./g, '/')}/${name}Plugin.java`,
        content: [
          `package ${packageName};`,
          '',
          'import org.bukkit.plugin.java.JavaPlugin;',
          '',
          `public final class ${name}Plugin extends JavaPlugin {`,
          '    @Override',
          '    public void onEnable() {',
          `        getLogger().info("${name} enabled (simulated sample)");`,
          '    }',
          '}',
          '',
        ].join('\n'),
      },
      {
        path: PLUGIN_YML_PATH,
        content: `name: ${name}\nversion: "1.0.0"\nmain: ${mainClass}\napi-version: "${PLUGIN_API_VERSION}"\n`,
      },
    ],
  });
}
